/**
 * The one Kubernetes provider every object of a stack is created through, pinned to the stack's
 * kubeconfig context (stack key `cluster.context`), so `pulumi up` never deploys to whatever
 * context kubectl happens to have selected.
 *
 * The context is checked against the kubeconfig before any resource is registered: a stack whose
 * context is missing stops with one line naming it, and nothing is created.
 *
 * ConfigMaps and Secrets stay immutable (the provider's default: `enableConfigMapMutable` and
 * `enableSecretMutable` off). The program names them by their content (infra/contentName.ts), so
 * a change is a new object created before the old one is deleted, never a delete-then-create of
 * an object running pods depend on (docs/deploy.md, "How a change rolls out").
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import * as k8s from '@pulumi/kubernetes';
import { parse as parseYaml } from 'yaml';

export interface ClusterConfig {
  context: string;
  kubeconfig?: string;
}

/** The kubeconfig files kubectl would read: the stack's own, else $KUBECONFIG (a list), else ~/.kube/config. */
export function kubeconfigPaths(cluster: ClusterConfig, env: NodeJS.ProcessEnv, home: string): string[] {
  if (cluster.kubeconfig) return [cluster.kubeconfig];
  if (env.KUBECONFIG) return env.KUBECONFIG.split(delimiter).filter(Boolean);
  return [join(home, '.kube', 'config')];
}

/** Context names defined in one kubeconfig text (empty for text that is not a kubeconfig). */
export function contextNames(kubeconfigText: string): string[] {
  const doc = parseYaml(kubeconfigText) as { contexts?: Array<{ name?: unknown }> } | null;
  return (doc?.contexts ?? []).map((c) => c?.name).filter((n): n is string => typeof n === 'string');
}

/**
 * Returns a problem line when `context` is not defined in any of the files (pure apart from the
 * injected reader), or undefined when it is.
 */
export function contextProblem(context: string, paths: string[], read: (path: string) => string | undefined): string | undefined {
  const found: string[] = [];
  for (const p of paths) {
    const text = read(p);
    if (text !== undefined) found.push(...contextNames(text));
  }
  if (found.includes(context)) return undefined;
  const where = paths.join(', ');
  return found.length
    ? `ai-gateway:cluster.context: context "${context}" is not in ${where} (it has: ${[...new Set(found)].join(', ')})`
    : `ai-gateway:cluster.context: no kubeconfig with contexts at ${where}; set ai-gateway:cluster.kubeconfig or KUBECONFIG`;
}

const readIfExists = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);

/** Checks the stack's context against the kubeconfig kubectl would use; returns the problem or undefined. */
export function checkCluster(cluster: ClusterConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return contextProblem(cluster.context, kubeconfigPaths(cluster, env, homedir()), readIfExists);
}

/** The explicit provider; pass it to every top-level component (`{ provider }`). */
export function clusterProvider(cluster: ClusterConfig): k8s.Provider {
  return new k8s.Provider('cluster', {
    context: cluster.context,
    ...(cluster.kubeconfig ? { kubeconfig: cluster.kubeconfig } : {}),
    // Stated, not left to defaults or environment variables (PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE ...):
    // content-named ConfigMaps and Secrets are replaced create-before-delete.
    enableConfigMapMutable: false,
    enableSecretMutable: false,
    // Never drop resources from state just because the cluster is unreachable.
    deleteUnreachable: false,
  });
}

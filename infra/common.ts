/** Names, labels and security settings every component shares, defined once. */
import type * as k8s from '@pulumi/kubernetes';

export const APP = 'ai-gateway';
export const GATEWAY_SECRET = 'ai-gateway-secrets';
export const REDIS_SECRET = 'redis-auth';
export const REDIS_PORT = 6379;
export const CONFIG_DIR = '/etc/gateway';
export const CONFIG_FILE = 'config.yaml';
/** The uid the gateway image runs as (Dockerfile `USER 10001`). */
export const GATEWAY_UID = 10001;
/** The redis user of the official redis alpine image. */
export const REDIS_UID = 999;

export type Component = 'gateway' | 'redis' | 'redis-cache' | 'smoke-probe';
export type Track = 'stable' | 'canary';

/** Labels that select a component's pods (NetworkPolicies and Services rely on these). */
export function selectorLabels(component: Component, track?: Track): Record<string, string> {
  return {
    'app.kubernetes.io/name': APP,
    'app.kubernetes.io/component': component,
    ...(track ? { 'app.kubernetes.io/track': track } : {}),
  };
}

/** Full labels: the selector labels plus the ones that describe the object. */
export function objectLabels(stack: string, component: Component, track?: Track): Record<string, string> {
  return {
    ...selectorLabels(component, track),
    'app.kubernetes.io/instance': `${APP}-${stack}`,
    'app.kubernetes.io/part-of': APP,
    'app.kubernetes.io/managed-by': 'pulumi',
  };
}

export function podSecurityContext(uid: number): k8s.types.input.core.v1.PodSecurityContext {
  return { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, seccompProfile: { type: 'RuntimeDefault' } };
}

export function containerSecurityContext(uid: number): k8s.types.input.core.v1.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export const serviceHost = (name: string, namespace: string) => `${name}.${namespace}.svc.cluster.local`;

/**
 * Validates rendered objects against their OpenAPI schemas: Kubernetes (kubernetes-models), the
 * Prometheus operator, Gateway API, Envoy Gateway and cert-manager (@kubernetes-models/*). The model packages are
 * ESM-only devDependencies, loaded with import() by `npm run render` and the tests, never by the
 * Pulumi program itself.
 */
import type { Obj } from './validate';

type Model = new (data: Obj) => { validate(): void };

const PACKAGES: Record<string, string> = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
  'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
  'gateway.envoyproxy.io': '@kubernetes-models/envoy-gateway',
  'cert-manager.io': '@kubernetes-models/cert-manager',
  'acme.cert-manager.io': '@kubernetes-models/cert-manager',
};

/** The model class for an object's apiVersion and kind. */
export async function modelFor(o: Obj): Promise<Model> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const pkg = PACKAGES[group] ?? 'kubernetes-models';
  const groupPath = group === '' ? version : `${group}/${version}`;
  const mod = (await import(`${pkg}/${groupPath}/${o.kind}`)) as Record<string, Model>;
  const M = mod[o.kind];
  if (!M) throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
  return M;
}

/**
 * API groups whose schemas no installed package carries: CiliumNetworkPolicy, GKE's HealthCheckPolicy
 * and CloudNativePG's Cluster. infra/validate.ts checks what they point at instead; the API server
 * checks the rest at `pulumi up`.
 */
export const UNPACKAGED_GROUPS = new Set(['cilium.io', 'networking.gke.io', 'postgresql.cnpg.io']);

/** One line per object that does not validate against its schema. */
export async function checkSchemas(objects: Obj[]): Promise<string[]> {
  const problems: string[] = [];
  for (const o of objects) {
    if (UNPACKAGED_GROUPS.has(String(o.apiVersion).split('/')[0])) continue;
    try {
      new (await modelFor(o))(o).validate();
    } catch (err) {
      problems.push(`${o.kind}/${o.metadata?.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}

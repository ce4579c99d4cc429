/**
 * Checks on rendered objects that their OpenAPI schemas cannot express (pure; `npm run render` fails
 * on any): every selector selects the pods it is meant to, HPA min <= max, CIDRs parse, label keys
 * and values are valid, HTTPRoute backends, parents and timeouts are consistent, and every
 * NetworkPolicy peer is a pod of the render, a namespace of the render, or one the stack config names.
 * Schema validation itself is `validateSchemas.ts`'s.
 */
import { cidrWithin, classify, parseCidr } from './egress';
import type { StackConfig } from './config';
import { gatewayBlocks } from './config';
import { dataPlaneNamespace } from './dataPlane';
import { ACME_SOLVER_LABELS, acmeSolverAdmission, routeAdmission } from './gatewayApi';
import { collectorPeer } from './telemetry';

// Loose shape for reading rendered objects.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;
type Labels = Record<string, string>;

const WORKLOADS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'];
const NS_LABEL = 'kubernetes.io/metadata.name';

/** Does a label selector (matchLabels and matchExpressions) select these labels? */
export function selects(selector: Obj | undefined, labels: Labels): boolean {
  if (!selector) return false;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpr = (selector.matchExpressions ?? []).every((e: Obj) => {
    const has = e.key in labels;
    if (e.operator === 'In') return has && e.values.includes(labels[e.key]);
    if (e.operator === 'NotIn') return !has || !e.values.includes(labels[e.key]);
    if (e.operator === 'Exists') return has;
    if (e.operator === 'DoesNotExist') return !has;
    return false;
  });
  return byLabels && byExpr;
}

const name = (o: Obj) => `${o.kind}/${o.metadata?.name}`;
const templates = (objects: Obj[]) => objects.filter((o) => WORKLOADS.includes(o.kind)).map((o) => ({ owner: o, labels: (o.spec?.template?.metadata?.labels ?? {}) as Labels }));
/** Pod labels of every pod the render can start: workloads' templates, CronJobs' job templates, and CloudNativePG's instances. */
const podLabels = (objects: Obj[]): Labels[] => [
  ...templates(objects).map((t) => t.labels),
  ...objects.filter((o) => o.kind === 'Cluster' && String(o.apiVersion).startsWith('postgresql.cnpg.io/')).map((o) => ({ 'cnpg.io/cluster': o.metadata.name }) as Labels),
  ...objects.filter((o) => o.kind === 'CronJob').map((o) => (o.spec?.jobTemplate?.spec?.template?.metadata?.labels ?? {}) as Labels),
];
const selectsAnyPod = (objects: Obj[], selector: Obj) => podLabels(objects).some((l) => selects(selector, l));

// ---------------------------------------------------------------- labels

const LABEL_NAME = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why a label key or value is invalid (Kubernetes' syntax rules), or undefined. */
export function labelProblem(key: string, value: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const [prefix, keyName] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key "${key}": prefix must be a DNS subdomain`;
  if (!keyName || keyName.length > 63 || !LABEL_NAME.test(keyName)) return `label key "${key}": name must be 1-63 alphanumerics, '-', '_' or '.'`;
  if (typeof value !== 'string' || value.length > 63 || !LABEL_NAME.test(value))
    return `label "${key}": value "${value}" must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric`;
  return undefined;
}

function labelSets(o: Obj): [string, Labels][] {
  const sets: [string, Labels][] = [['metadata.labels', o.metadata?.labels ?? {}]];
  if (o.spec?.template?.metadata?.labels) sets.push(['spec.template.metadata.labels', o.spec.template.metadata.labels]);
  if (o.spec?.selector?.matchLabels) sets.push(['spec.selector.matchLabels', o.spec.selector.matchLabels]);
  if (o.kind === 'Service' && o.spec?.selector) sets.push(['spec.selector', o.spec.selector]);
  if (o.spec?.podSelector?.matchLabels) sets.push(['spec.podSelector.matchLabels', o.spec.podSelector.matchLabels]);
  return sets;
}

function checkLabels(objects: Obj[]): string[] {
  return objects.flatMap((o) =>
    labelSets(o).flatMap(([where, set]) =>
      Object.entries(set)
        .map(([k, v]) => labelProblem(k, v))
        .filter((p): p is string => !!p)
        .map((p) => `${name(o)} ${where}: ${p}`),
    ),
  );
}

// ---------------------------------------------------------------- selectors and references

function checkWorkloadSelectors(objects: Obj[]): string[] {
  const problems: string[] = [];
  for (const { owner, labels } of templates(objects)) {
    if (!selects(owner.spec.selector, labels)) problems.push(`${name(owner)}: spec.selector does not select its own pod template`);
    for (const t of owner.spec.template.spec?.topologySpreadConstraints ?? []) {
      if (!selects(t.labelSelector, labels)) problems.push(`${name(owner)}: topology spread on ${t.topologyKey} does not select its own pods`);
    }
  }
  for (const svc of objects.filter((o) => o.kind === 'Service' && o.spec?.selector)) {
    const matched = templates(objects).filter((t) => selects({ matchLabels: svc.spec.selector }, t.labels));
    if (matched.length === 0) problems.push(`${name(svc)}: selector selects no pod of the render`);
    const tracks = new Set(matched.map((t) => t.labels['app.kubernetes.io/track']).filter(Boolean));
    if (tracks.size > 1) problems.push(`${name(svc)}: selector selects pods of several tracks (${[...tracks].sort().join(', ')})`);
  }
  for (const pdb of objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
    if (!selectsAnyPod(objects, pdb.spec.selector)) problems.push(`${name(pdb)}: selector selects no pod of the render`);
  }
  for (const sm of objects.filter((o) => o.kind === 'ServiceMonitor')) {
    if (!objects.some((s) => s.kind === 'Service' && selects(sm.spec.selector, s.metadata.labels ?? {}))) problems.push(`${name(sm)}: selector selects no Service of the render`);
  }
  return problems;
}

function checkAutoscalers(objects: Obj[]): string[] {
  return objects
    .filter((o) => o.kind === 'HorizontalPodAutoscaler')
    .flatMap((hpa) => {
      const p: string[] = [];
      const ref = hpa.spec.scaleTargetRef;
      if (!objects.some((o) => o.kind === ref.kind && o.metadata.name === ref.name)) p.push(`${name(hpa)}: scaleTargetRef ${ref.kind}/${ref.name} is not in the render`);
      if ((hpa.spec.minReplicas ?? 1) > hpa.spec.maxReplicas) p.push(`${name(hpa)}: minReplicas ${hpa.spec.minReplicas} is above maxReplicas ${hpa.spec.maxReplicas}`);
      return p;
    });
}

/** Namespaces the stack config names as peers (for the route kind in use): route, ACME solver, Prometheus, DNS, provider Services, extra entries, the trace collector. */
export function namedNamespaces(stack: StackConfig): Set<string> {
  const r = stack.route;
  const peerNamespaces = [...routeAdmission(r, stack.namespace).peers, ...(acmeSolverAdmission(r, stack.namespace)?.peers ?? [])].map(
    (p) => (p.namespaceSelector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels?.[NS_LABEL],
  );
  const names = [
    ...peerNamespaces,
    stack.database?.mode === 'cnpg' ? stack.database.operatorNamespace : undefined,
    dataPlaneNamespace(r.dataPlane),
    r.gateway.parentRef?.namespace,
    stack.monitoring.prometheusNamespace,
    stack.egress.dns.namespace,
    ...stack.egress.extra.map((e) => e.namespace),
  ];
  for (const p of gatewayBlocks(stack).flatMap((g) => g.providers)) {
    try {
      const d = classify(String(p.base_url), stack.egress.clusterDomain);
      if (d.kind === 'service') names.push(d.namespace);
    } catch {
      /* the gateway's parser reports a bad URL */
    }
  }
  const collector = stack.telemetry && collectorPeer(stack.telemetry.otlpEndpoint, stack.namespace, stack.egress.clusterDomain);
  if (collector?.kind === 'namespace') names.push(collector.namespace);
  return new Set(names.filter((n): n is string => !!n));
}

function peerProblem(peer: Obj, objects: Obj[], namespaces: Set<string>): string | undefined {
  if (peer.ipBlock) {
    if (!parseCidr(peer.ipBlock.cidr)) return `ipBlock ${peer.ipBlock.cidr} is not a valid CIDR`;
    const bad = (peer.ipBlock.except ?? []).find((e: string) => !cidrWithin(e, peer.ipBlock.cidr));
    return bad ? `ipBlock except ${bad} is not inside ${peer.ipBlock.cidr}` : undefined;
  }
  if (peer.namespaceSelector) {
    const ns = peer.namespaceSelector.matchLabels?.[NS_LABEL];
    if (!ns) return `namespaceSelector ${JSON.stringify(peer.namespaceSelector)} does not name a namespace by ${NS_LABEL}`;
    const rendered = objects.some((o) => o.kind === 'Namespace' && o.metadata.name === ns);
    return rendered || namespaces.has(ns) ? undefined : `namespace "${ns}" is neither in the render nor named by the stack config`;
  }
  if (peer.podSelector && !selectsAnyPod(objects, peer.podSelector)) return `podSelector ${JSON.stringify(peer.podSelector.matchLabels)} selects no pod of the render`;
  return undefined;
}

function checkNetworkPolicies(objects: Obj[], namespaces: Set<string>): string[] {
  const problems: string[] = [];
  for (const np of objects.filter((o) => o.kind === 'NetworkPolicy')) {
    const sel = np.spec.podSelector ?? {};
    const external = selects(sel, ACME_SOLVER_LABELS) && Object.keys(sel.matchLabels ?? {}).every((k) => k in ACME_SOLVER_LABELS);
    if (Object.keys(sel).length > 0 && !external && !selectsAnyPod(objects, sel)) problems.push(`${name(np)}: podSelector selects no pod of the render`);
    const rules: [string, Obj[]][] = [
      ...(np.spec.ingress ?? []).map((r: Obj, i: number) => [`ingress[${i}].from`, r.from ?? []] as [string, Obj[]]),
      ...(np.spec.egress ?? []).map((r: Obj, i: number) => [`egress[${i}].to`, r.to ?? []] as [string, Obj[]]),
    ];
    for (const [where, peers] of rules) {
      peers.forEach((peer, j) => {
        const p = peerProblem(peer, objects, namespaces);
        if (p) problems.push(`${name(np)} ${where}[${j}]: ${p}`);
      });
    }
  }
  return problems;
}

// ---------------------------------------------------------------- routes

/** Gateway API Duration (GEP-2257) in milliseconds. */
export function durationMs(d: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  return [...d.matchAll(/(\d+)(ms|h|m|s)/g)].reduce((sum, m) => sum + Number(m[1]) * units[m[2]], 0);
}

function serviceHasPort(objects: Obj[], namespace: string, svc: string, port: number | string): boolean {
  const s = objects.find((o) => o.kind === 'Service' && o.metadata.name === svc && o.metadata.namespace === namespace);
  return !!s && s.spec.ports.some((p: Obj) => p.port === port || p.name === port);
}

function checkHttpRoutes(objects: Obj[], namespaces: Set<string>): string[] {
  const problems: string[] = [];
  for (const route of objects.filter((o) => o.kind === 'HTTPRoute')) {
    const ns = route.metadata.namespace;
    for (const ref of route.spec.parentRefs ?? []) {
      const parentNs = ref.namespace ?? ns;
      const gw = objects.find((o) => o.kind === 'Gateway' && o.metadata.name === ref.name && o.metadata.namespace === parentNs);
      if (gw && ref.sectionName && !gw.spec.listeners.some((l: Obj) => l.name === ref.sectionName)) problems.push(`${name(route)}: parent ${ref.name} has no listener "${ref.sectionName}"`);
      if (!gw && !namespaces.has(parentNs)) problems.push(`${name(route)}: parent Gateway ${parentNs}/${ref.name} is neither in the render nor named by the stack config`);
    }
    (route.spec.rules ?? []).forEach((rule: Obj, i: number) => {
      for (const b of rule.backendRefs ?? []) {
        if (!serviceHasPort(objects, b.namespace ?? ns, b.name, b.port)) problems.push(`${name(route)} rules[${i}]: backendRef ${b.name}:${b.port} is not a Service port of the render`);
      }
      const refs = rule.backendRefs ?? [];
      if (refs.length > 1 && refs.reduce((s: number, b: Obj) => s + (b.weight ?? 1), 0) === 0) problems.push(`${name(route)} rules[${i}]: backendRefs weights sum to 0`);
      const t = rule.timeouts;
      if (t?.request && t?.backendRequest && durationMs(t.request) !== 0 && durationMs(t.backendRequest) > durationMs(t.request))
        problems.push(`${name(route)} rules[${i}]: timeouts.backendRequest ${t.backendRequest} exceeds timeouts.request ${t.request}`);
    });
  }
  for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
    for (const p of (ing.spec.rules ?? []).flatMap((r: Obj) => r.http?.paths ?? [])) {
      const svc = p.backend.service;
      if (!serviceHasPort(objects, ing.metadata.namespace, svc.name, svc.port.name ?? svc.port.number)) problems.push(`${name(ing)}: backend ${svc.name} is not a Service port of the render`);
    }
  }
  return problems;
}

/** A certificate issuer named by an annotation or a Certificate's issuerRef must be rendered (Issuer) — a ClusterIssuer is the cluster's. */
function checkIssuers(objects: Obj[]): string[] {
  const issuerOf = (o: Obj): string | undefined =>
    o.metadata?.annotations?.['cert-manager.io/issuer'] ?? (o.kind === 'Certificate' && o.spec?.issuerRef?.kind === 'Issuer' ? o.spec.issuerRef.name : undefined);
  return objects
    .filter((o) => issuerOf(o))
    .filter((o) => !objects.some((i) => i.kind === 'Issuer' && i.metadata.name === issuerOf(o) && i.metadata.namespace === o.metadata.namespace))
    .map((o) => `${name(o)}: Issuer ${issuerOf(o)} is not in the render`);
}

/** A Gateway listener's certificate Secret must be written by a Certificate of the render, or by cert-manager for an Ingress of the render (a transition). */
function checkListenerCertificates(objects: Obj[]): string[] {
  const shim = (o: Obj) => !!(o.metadata?.annotations?.['cert-manager.io/issuer'] || o.metadata?.annotations?.['cert-manager.io/cluster-issuer']);
  const ingressCerts = objects
    .filter((o) => o.kind === 'Ingress' && shim(o))
    .flatMap((o) => (o.spec.tls ?? []).map((t: Obj) => ({ kind: 'Certificate', metadata: o.metadata, spec: { secretName: t.secretName } })));
  const certs = [...objects.filter((o) => o.kind === 'Certificate'), ...ingressCerts];
  return objects
    .filter((o) => o.kind === 'Gateway')
    .flatMap((gw) => (gw.spec.listeners ?? []).flatMap((l: Obj) => (l.tls?.certificateRefs ?? []).map((ref: Obj) => [gw, ref] as [Obj, Obj])))
    .filter(([gw, ref]) => !certs.some((c) => c.spec.secretName === ref.name && c.metadata.namespace === gw.metadata.namespace))
    .map(([gw, ref]) => `${name(gw)}: listener certificate Secret ${ref.name} is written by no Certificate of the render`);
}

/**
 * A BackendTrafficPolicy's CEL rules, which its packaged schema does not carry (Envoy Gateway,
 * api/v1alpha1/loadbalancer_types.go and backendtrafficpolicy_types.go), and its targets.
 */
function checkBackendTrafficPolicies(objects: Obj[]): string[] {
  const problems: string[] = [];
  for (const btp of objects.filter((o) => o.kind === 'BackendTrafficPolicy')) {
    const refs: Obj[] = btp.spec?.targetRefs ?? [];
    const routes = (r: Obj) => r.group === 'gateway.networking.k8s.io' && r.kind === 'HTTPRoute';
    const found = (r: Obj) => objects.some((o) => o.kind === 'HTTPRoute' && o.metadata.name === r.name && o.metadata.namespace === btp.metadata.namespace);
    if (!refs.length || !refs.every((r) => routes(r) && found(r))) problems.push(`${name(btp)}: targetRefs must name HTTPRoutes of the render, in its namespace`);
    const merge = btp.spec?.mergeType;
    if (merge !== undefined && (!['StrategicMerge', 'JSONMerge'].includes(merge) || !refs.every(routes)))
      problems.push(`${name(btp)}: mergeType must be StrategicMerge or JSONMerge, with route targets only`);
    const lb = btp.spec?.loadBalancer;
    if (lb?.slowStart && !['RoundRobin', 'LeastRequest', 'BackendUtilization'].includes(lb.type))
      problems.push(`${name(btp)}: slowStart needs a RoundRobin, LeastRequest or BackendUtilization load balancer`);
  }
  return problems;
}

/** What a HealthCheckPolicy or a CiliumNetworkPolicy points at must be in the render (their schemas are not packaged here). */
function checkPolicyTargets(objects: Obj[]): string[] {
  const problems: string[] = [];
  for (const hc of objects.filter((o) => o.kind === 'HealthCheckPolicy')) {
    const t = hc.spec?.targetRef;
    if (!t || t.kind !== 'Service' || !objects.some((o) => o.kind === 'Service' && o.metadata.name === t.name && o.metadata.namespace === hc.metadata.namespace))
      problems.push(`${name(hc)}: targetRef is not a Service of the render`);
    const path = hc.spec?.default?.config?.httpHealthCheck?.requestPath;
    if (hc.spec?.default?.config?.type !== 'HTTP' || typeof path !== 'string' || !path.startsWith('/')) problems.push(`${name(hc)}: needs an HTTP health check with a requestPath`);
  }
  for (const cnp of objects.filter((o) => o.kind === 'CiliumNetworkPolicy')) {
    const sel = cnp.spec?.endpointSelector;
    const external = selects(sel, ACME_SOLVER_LABELS);
    if (!sel || (!external && !selectsAnyPod(objects, sel))) problems.push(`${name(cnp)}: endpointSelector selects no pod of the render`);
    for (const rule of cnp.spec?.ingress ?? []) {
      const bad = (rule.fromEntities ?? []).filter((e: string) => !CILIUM_ENTITIES.has(e));
      if (bad.length) problems.push(`${name(cnp)}: unknown Cilium entities ${bad.join(', ')}`);
    }
  }
  return problems;
}

/** Cilium's reserved entities (docs.cilium.io, policy language, "Entities Based"). */
const CILIUM_ENTITIES = new Set(['host', 'remote-node', 'kube-apiserver', 'ingress', 'cluster', 'init', 'health', 'unmanaged', 'world', 'all']);

/** Every problem the schemas cannot see, one line each naming the object. Empty when the render is consistent. */
export function checkRendered(objects: Obj[], stack: StackConfig): string[] {
  const namespaces = namedNamespaces(stack);
  return [
    ...checkLabels(objects),
    ...checkWorkloadSelectors(objects),
    ...checkAutoscalers(objects),
    ...checkNetworkPolicies(objects, namespaces),
    ...checkHttpRoutes(objects, namespaces),
    ...checkIssuers(objects),
    ...checkListenerCertificates(objects),
    ...checkPolicyTargets(objects),
    ...checkBackendTrafficPolicies(objects),
  ];
}

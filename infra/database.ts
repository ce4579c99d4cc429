/**
 * PostgreSQL for the gateway's key store and spend ledger (stack key `database`; the gateway reads
 * DATABASE_URL):
 *   external  a managed server: DATABASE_URL comes from the gateway Secret (secret `databaseUrl`),
 *             and the gateway may reach the server's CIDRs on its port.
 *   cnpg      an in-cluster cluster run by the CloudNativePG operator: its `Cluster` resource
 *             (postgresql.cnpg.io/v1), whose operator writes the Secret `<cluster>-app` with the
 *             application user's connection string under `uri`; the gateway pods read DATABASE_URL
 *             from it. The instance pods carry `cnpg.io/cluster: <cluster>`; this file's
 *             NetworkPolicies let them replicate, answer the operator (status port 8000) and the
 *             gateway (5432), reach the API server (the instance manager watches its Cluster), and,
 *             with `backup`, the object store over HTTPS.
 * `pulumi up` waits for the Cluster's Ready condition (pulumi.com/waitFor) before the gateway rolls.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, objectLabels, selectorLabels } from './common';
import type { StackConfig } from './config';
import { NON_PUBLIC_RANGES } from './egress';
import { WAIT_FOR } from './gatewayApi';

type Database = NonNullable<StackConfig['database']>;
type Cnpg = Extract<Database, { mode: 'cnpg' }>;
type EgressRule = k8s.types.input.networking.v1.NetworkPolicyEgressRule;

export const DB_CLUSTER = `${APP}-db`;
export const POSTGRES_PORT = 5432;
/** The instance manager's status port, which the operator calls. */
export const CNPG_STATUS_PORT = 8000;
export const cnpgPodLabels = (cluster = DB_CLUSTER) => ({ 'cnpg.io/cluster': cluster });
/** The Secret the operator writes for the application user, and its connection-string key. */
export const CNPG_APP_SECRET = `${DB_CLUSTER}-app`;
export const CNPG_URI_KEY = 'uri';

const tcp = (port: number) => ({ protocol: 'TCP', port });
const inNamespace = (ns: string) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } });

/** The gateway's egress rule to the database (pure). */
export function databaseEgress(db: Database): EgressRule {
  if (db.mode === 'external') return { to: db.egressCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(db.port)] };
  return { to: [{ podSelector: { matchLabels: cnpgPodLabels() } }], ports: [tcp(POSTGRES_PORT)] };
}

/** DATABASE_URL for the gateway container: from the operator's Secret with cnpg (external: the gateway Secret carries it). */
export function databaseEnv(db: Database | undefined): k8s.types.input.core.v1.EnvVar[] {
  if (db?.mode !== 'cnpg') return [];
  return [{ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: CNPG_APP_SECRET, key: CNPG_URI_KEY } } }];
}

/** The Cluster spec (pure): application database `aigw` owned by `aigw`, and barman-cloud backups when set. */
export function cnpgClusterSpec(db: Cnpg) {
  const b = db.backup;
  const credentials = b?.s3CredentialsSecret
    ? { s3Credentials: { accessKeyId: { name: b.s3CredentialsSecret, key: 'ACCESS_KEY_ID' }, secretAccessKey: { name: b.s3CredentialsSecret, key: 'ACCESS_SECRET_KEY' } } }
    : {};
  return {
    instances: db.instances,
    storage: { size: String(db.storage.size), ...(db.storage.storageClass ? { storageClass: db.storage.storageClass } : {}) },
    resources: db.resources,
    bootstrap: { initdb: { database: 'aigw', owner: 'aigw' } },
    ...(b ? { backup: { retentionPolicy: b.retentionPolicy, barmanObjectStore: { destinationPath: b.destinationPath, ...credentials } } } : {}),
  };
}

export interface CnpgDatabaseArgs {
  namespace: pulumi.Input<string>;
  stack: string;
  database: Cnpg;
  dns: EgressRule;
  protect: boolean;
}

/** The in-cluster PostgreSQL (mode cnpg): the Cluster, its scheduled backup, and its NetworkPolicies. */
export class CnpgDatabase extends pulumi.ComponentResource {
  readonly cluster: k8s.apiextensions.CustomResource;

  constructor(name: string, args: CnpgDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:CnpgDatabase', name, {}, opts);
    const labels = objectLabels(args.stack, 'gateway');
    const metadata = (n: string, annotations?: Record<string, string>) => ({ name: n, namespace: args.namespace, labels, ...(annotations ? { annotations } : {}) });
    this.cluster = new k8s.apiextensions.CustomResource(
      name,
      { apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', metadata: metadata(DB_CLUSTER, { [WAIT_FOR]: 'condition=Ready' }), spec: cnpgClusterSpec(args.database) },
      { parent: this, protect: args.protect, retainOnDelete: args.protect },
    );
    if (args.database.backup) {
      new k8s.apiextensions.CustomResource(
        `${name}-backup`,
        {
          apiVersion: 'postgresql.cnpg.io/v1',
          kind: 'ScheduledBackup',
          metadata: metadata(`${DB_CLUSTER}-daily`),
          spec: { schedule: args.database.backup.schedule, backupOwnerReference: 'self', cluster: { name: DB_CLUSTER } },
        },
        { parent: this, dependsOn: [this.cluster] },
      );
    }
    new k8s.networking.v1.NetworkPolicy(`${name}-policy`, { metadata: metadata(`${APP}-database`), spec: cnpgPolicySpec(args.database, args.dns) }, { parent: this });
    this.registerOutputs({});
  }
}

/** Who the instances talk to (pure): each other, the operator, the gateway, the API server, DNS, and the backup store. */
export function cnpgPolicySpec(db: Cnpg, dns: EgressRule): k8s.types.input.networking.v1.NetworkPolicySpec {
  const instances = { podSelector: { matchLabels: cnpgPodLabels() } };
  return {
    podSelector: instances.podSelector,
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      { from: [{ podSelector: { matchLabels: selectorLabels('gateway') } }, instances], ports: [tcp(POSTGRES_PORT)] },
      { from: [inNamespace(db.operatorNamespace)], ports: [tcp(CNPG_STATUS_PORT), tcp(POSTGRES_PORT)] },
    ],
    egress: [
      dns,
      { to: [instances], ports: [tcp(POSTGRES_PORT), tcp(CNPG_STATUS_PORT)] },
      { to: db.apiServer.cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(db.apiServer.port)] },
      ...(db.backup ? [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: NON_PUBLIC_RANGES } }], ports: [tcp(443)] }] : []),
    ],
  };
}

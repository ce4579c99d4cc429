/**
 * Issue 23, points 3, 5, 7 and 8, and issue 24 item 7 (stacks): rendered and refused.
 *   bedrock: IRSA / Pod Identity ServiceAccount or static keys, and no provider API key demanded;
 *   the state Redis Guaranteed with a PriorityClass; the cache on its own managed Redis URL;
 *   canary weights its replicas cannot carry refused, the canary's own PDB;
 *   kube-system, kube-public and default refused as the stack namespace;
 *   DATABASE_URL from a managed Postgres Secret or a CloudNativePG Cluster, and the egress to it.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Obj, RenderResult, cleanup, named, ofKind, one, render, selects } from './helpers';
import { testTempDir } from '../helpers/temp-dirs';

const BEDROCK =
  'gateway.providers[1]={name: bedrock-east, type: bedrock, region: us-east-1, base_url: "https://bedrock-runtime.us-east-1.amazonaws.com", models: [{name: claude, upstream_name: "anthropic.claude-3-5-sonnet-20240620-v1:0", input_per_million: 3, output_per_million: 15}]}';
const ROLE = 'arn:aws:iam::123456789012:role/ai-gateway-bedrock';
const CANARY_IMAGE = `ghcr.io/example/ai-gateway:0.2.0@sha256:${'cd'.repeat(32)}`;
const DB_SECRET = 'postgresql://aigw:LEAKCHECK-db-pass@pg.internal:5432/aigw';

let irsa: RenderResult;
let podIdentity: RenderResult;
let staticKeys: RenderResult;
let production: RenderResult;
let managedCache: RenderResult;
let canary: RenderResult;
let cnpg: RenderResult;
let externalDb: RenderResult;

const gatewayPolicy = (r: RenderResult) => one(r, 'NetworkPolicy', 'ai-gateway-gateway');
const gatewayPod = (r: RenderResult) => one(r, 'Deployment', 'ai-gateway').spec.template;
const config = (r: RenderResult) => parseYaml(named(r, 'ConfigMap', 'ai-gateway-config').data['config.yaml']);

describe('infra: bedrock credentials, state Redis, canary, namespaces, database', function () {
  this.timeout(400_000);
  const dir = testTempDir('aigw-guards-');
  const awsFile = (aws: object) => {
    const f = join(dir, `aws-${Object.values(aws).join('-').replace(/\W/g, '')}.yaml`);
    writeFileSync(f, JSON.stringify({ config: { 'ai-gateway:aws': aws } }));
    return f;
  };

  before(async () => {
    [irsa, podIdentity, staticKeys, production, managedCache, canary, cnpg, externalDb] = await Promise.all([
      render('staging', '--set', BEDROCK, '--config-file', awsFile({ mode: 'irsa', roleArn: ROLE })),
      render('staging', '--set', BEDROCK, '--config-file', awsFile({ mode: 'pod-identity' })),
      render(
        'staging',
        '--set',
        BEDROCK,
        '--config-file',
        awsFile({ mode: 'static' }),
        '--set-secret',
        'awsAccessKeyId=AKIALEAKCHECK0000001',
        '--set-secret',
        'awsSecretAccessKey=LEAKCHECK-aws-secret-key-000',
      ),
      render('production'),
      render(
        'staging',
        '--set',
        'redis={mode: external, egressCidrs: [10.20.0.0/24], cache: {egressCidrs: [10.21.0.0/24], port: 6380}}',
        '--set-secret',
        'redisCacheUrl=rediss://:LEAKCHECK-cache@cache.internal:6380',
      ),
      render('production', '--set', `canary.image=${CANARY_IMAGE}`, '--set', 'canary.weight=50', '--set', 'canary.replicas=2'),
      render('production', '--set', 'database={mode: cnpg, instances: 2, apiServer: {cidrs: [172.20.0.1/32]}, backup: {destinationPath: "s3://backups/aigw", s3CredentialsSecret: pg-backup-s3}}'),
      render('staging', '--set', 'database={mode: external, egressCidrs: [10.50.0.0/24]}', '--set-secret', `databaseUrl=${DB_SECRET}`),
    ]);
    for (const [name, r] of Object.entries({ irsa, podIdentity, staticKeys, production, managedCache, canary, cnpg, externalDb })) assert.equal(r.code, 0, `render ${name} failed: ${r.stderr}`);
  });
  after(() => {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('bedrock', () => {
    it('IRSA: a ServiceAccount with the role annotation, the pods run as it, no token mounted, no provider key demanded', () => {
      const sa = one(irsa, 'ServiceAccount', 'ai-gateway');
      assert.equal(sa.metadata.annotations['eks.amazonaws.com/role-arn'], ROLE);
      assert.equal(sa.automountServiceAccountToken, false);
      const pod = gatewayPod(irsa).spec;
      assert.equal(pod.serviceAccountName, 'ai-gateway');
      assert.equal(pod.automountServiceAccountToken, false);
      assert.ok(pod.containers[0].env.some((e: Obj) => e.name === 'AWS_EC2_METADATA_DISABLED' && e.value === 'true'));
      const secret = named(irsa, 'Secret', 'ai-gateway-secrets');
      assert.ok(!Object.keys(secret.stringData).some((k) => k.includes('BEDROCK')), 'no provider key slot for a bedrock provider');
      assert.ok(!irsa.stderr.includes('bedrock') && !irsa.stdout.includes('providerApiKeys.bedrock'), 'no placeholder was needed for a bedrock key');
      const provider = config(irsa).providers.find((p: Obj) => p.name === 'bedrock-east');
      assert.equal(provider.api_key, undefined);
    });

    it('Pod Identity: the ServiceAccount without annotation, and egress to the node agent at 169.254.170.23:80', () => {
      const sa = one(podIdentity, 'ServiceAccount', 'ai-gateway');
      assert.equal(sa.metadata.annotations, undefined);
      assert.ok(gatewayPolicy(podIdentity).spec.egress.some((e: Obj) => e.to.some((t: Obj) => t.ipBlock?.cidr === '169.254.170.23/32') && e.ports[0].port === 80));
      assert.ok(!gatewayPolicy(irsa).spec.egress.some((e: Obj) => e.to.some((t: Obj) => t.ipBlock?.cidr === '169.254.170.23/32')));
    });

    it('static keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the gateway Secret only, no ServiceAccount', () => {
      assert.equal(ofKind(staticKeys, 'ServiceAccount').length, 0);
      const keys = Object.keys(named(staticKeys, 'Secret', 'ai-gateway-secrets').stringData);
      assert.ok(keys.includes('AWS_ACCESS_KEY_ID') && keys.includes('AWS_SECRET_ACCESS_KEY'));
      for (const text of staticKeys.files.values()) assert.ok(!text.includes('LEAKCHECK'), 'an AWS key reached a rendered file');
    });

    it('refuses a bedrock provider without aws credentials, naming the choices', async () => {
      const r = await render('staging', '--set', BEDROCK);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ai-gateway:aws: is required for bedrock provider\(s\) bedrock-east: \{mode: irsa, roleArn: \.\.\.\}, \{mode: pod-identity\} or \{mode: static\}/);
    });
  });

  describe('state Redis', () => {
    it('runs Guaranteed (requests = limits) with the stack PriorityClass; its PDB lets drains through', () => {
      const pod = one(production, 'StatefulSet', 'redis').spec.template.spec;
      const res = pod.containers[0].resources;
      assert.deepEqual(res.requests, res.limits, 'Guaranteed QoS needs requests equal to limits');
      const pc = one(production, 'PriorityClass', 'ai-gateway-state-ai-gateway');
      assert.equal(pod.priorityClassName, pc.metadata.name);
      assert.ok(pc.value >= 1_000_000 && pc.value < 1_000_000_000, 'above workloads, below system-*-critical');
      assert.equal(pc.globalDefault, false);
      assert.equal(one(production, 'PodDisruptionBudget', 'redis').spec.maxUnavailable, 1);
      assert.equal(one(production, 'StatefulSet', 'redis-cache').spec.template.spec.priorityClassName, undefined, 'the cache may be evicted first');
    });

    it('refuses a Burstable state Redis, naming the key', async () => {
      const r = await render('staging', '--set', 'redis.resources={requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 500m, memory: 256Mi}}');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ai-gateway:redis\.resources: requests must equal limits/);
    });

    it('with a managed Redis, the cache gets its own URL (secret redisCacheUrl) and the egress to it', () => {
      const cfg = config(managedCache);
      assert.equal(cfg.cache.redis.url, '${REDIS_CACHE_URL}');
      assert.equal(cfg.redis.url, '${REDIS_URL}');
      assert.ok('REDIS_CACHE_URL' in named(managedCache, 'Secret', 'ai-gateway-secrets').stringData);
      assert.ok(gatewayPolicy(managedCache).spec.egress.some((e: Obj) => e.to.some((t: Obj) => t.ipBlock?.cidr === '10.21.0.0/24') && e.ports[0].port === 6380));
      for (const text of managedCache.files.values()) assert.ok(!text.includes('LEAKCHECK'));
    });
  });

  describe('canary', () => {
    it('the canary has its own PDB (one pod at a time)', () => {
      const pdb = one(canary, 'PodDisruptionBudget', 'ai-gateway-canary');
      assert.equal(pdb.spec.maxUnavailable, 1);
      assert.ok(selects(pdb.spec.selector, one(canary, 'Deployment', 'ai-gateway-canary').spec.template.metadata.labels));
      assert.ok(!selects(pdb.spec.selector, one(canary, 'Deployment', 'ai-gateway').spec.template.metadata.labels));
    });

    it('refuses a weight its replicas cannot carry (weight 100 on one replica), naming how many it needs', async () => {
      const [w100, w50] = await Promise.all([
        render('production', '--set', `canary.image=${CANARY_IMAGE}`, '--set', 'canary.weight=100'),
        render('staging', '--set', `canary.image=${CANARY_IMAGE}`, '--set', 'canary.weight=50'),
      ]);
      assert.equal(w100.code, 1);
      assert.match(w100.stderr, /ai-gateway:canary\.replicas: 1 canary replica\(s\) cannot carry weight 100: with 3 stable replicas it needs at least 3/);
      assert.equal(w50.code, 1, 'half the traffic on one pod');
      assert.match(w50.stderr, /needs at least 2/);
    });
  });

  it('refuses kube-system, kube-public and default as the stack namespace', async () => {
    const results = await Promise.all(['kube-system', 'kube-public', 'default'].map((ns) => render('staging', '--set', `namespace=${ns}`)));
    for (const r of results) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ai-gateway:namespace: must be a namespace of the stack's own, not one of kube-system, kube-public, kube-node-lease, default/);
    }
  });

  describe('database (DATABASE_URL)', () => {
    it('managed: DATABASE_URL from the gateway Secret, egress to its CIDRs on 5432, the URL in no rendered file', () => {
      assert.ok('DATABASE_URL' in named(externalDb, 'Secret', 'ai-gateway-secrets').stringData);
      assert.ok(gatewayPolicy(externalDb).spec.egress.some((e: Obj) => e.to.some((t: Obj) => t.ipBlock?.cidr === '10.50.0.0/24') && e.ports[0].port === 5432));
      for (const text of externalDb.files.values()) assert.ok(!text.includes('LEAKCHECK'));
    });

    it('cnpg: a Cluster the pods read DATABASE_URL from (<cluster>-app, key uri), waited for, backed up, and policies for it', () => {
      const cluster = one(cnpg, 'Cluster', 'ai-gateway-db');
      assert.equal(cluster.apiVersion, 'postgresql.cnpg.io/v1');
      assert.equal(cluster.metadata.annotations['pulumi.com/waitFor'], 'condition=Ready');
      assert.equal(cluster.spec.instances, 2);
      assert.deepEqual(cluster.spec.bootstrap, { initdb: { database: 'aigw', owner: 'aigw' } });
      assert.equal(cluster.spec.backup.barmanObjectStore.destinationPath, 's3://backups/aigw');
      assert.equal(one(cnpg, 'ScheduledBackup', 'ai-gateway-db-daily').spec.cluster.name, 'ai-gateway-db');
      const env = gatewayPod(cnpg).spec.containers[0].env.find((e: Obj) => e.name === 'DATABASE_URL');
      assert.deepEqual(env.valueFrom, { secretKeyRef: { name: 'ai-gateway-db-app', key: 'uri' } });
      const instances = { 'cnpg.io/cluster': 'ai-gateway-db' };
      assert.ok(gatewayPolicy(cnpg).spec.egress.some((e: Obj) => e.to.some((t: Obj) => t.podSelector && selects(t.podSelector, instances)) && e.ports[0].port === 5432));
      const db = one(cnpg, 'NetworkPolicy', 'ai-gateway-database');
      assert.ok(selects(db.spec.podSelector, instances));
      const from = db.spec.ingress.flatMap((r: Obj) => r.from);
      assert.ok(
        from.some((f: Obj) => f.podSelector && selects(f.podSelector, gatewayPod(cnpg).metadata.labels)),
        'the gateway reaches the instances',
      );
      assert.ok(
        from.some((f: Obj) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'cnpg-system'),
        'the operator reaches the instances',
      );
      assert.ok(
        db.spec.egress.some((e: Obj) => e.to.some((t: Obj) => t.ipBlock?.cidr === '172.20.0.1/32')),
        'the instance manager reaches the API server',
      );
      assert.ok(
        db.spec.egress.some((e: Obj) => e.ports.some((p: Obj) => p.port === 443) && e.to.some((t: Obj) => t.ipBlock?.cidr === '0.0.0.0/0')),
        'backups reach the object store',
      );
    });

    it('production refuses a single-instance CloudNativePG cluster', async () => {
      const r = await render('production', '--set', 'database={mode: cnpg, apiServer: {cidrs: [172.20.0.1/32]}}');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ai-gateway:database\.instances: production needs at least 2 instances/);
    });
  });
});

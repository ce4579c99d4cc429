/**
 * The things the benchmark calls, each started in its own process on 127.0.0.1:
 * the fast fake upstream, the gateway (compiled dist/, every feature on), nginx
 * `proxy_pass` and the Portkey gateway. Each start function returns a Target, or throws
 * with the reason (nginx and Portkey are optional: run.ts reports them as absent).
 */
import { NODE_FLAGS } from '../service/core/runtime-flags';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startRedis, RedisServer } from '../test/helpers/redis-server';
import { childPids, hasCommand, outputMatch, start, Started, stop, waitHttp } from './lib';
import { freePort } from '../test/helpers/ports';

export const ROOT = resolve(__dirname, '..');
export const CHAT_PATH = '/v1/chat/completions';
export const MODEL = 'gpt-4o-mini';

export type TargetName = 'direct' | 'gateway' | 'nginx' | 'portkey' | 'node-floor' | 'gateway-traced' | 'gateway-base';

export interface Target {
  name: TargetName;
  /** Base URL (http://127.0.0.1:PORT); requests go to `${base}${CHAT_PATH}`. */
  base: string;
  headers: Record<string, string>;
  /** The processes whose CPU and memory count for this target (nginx: master and worker). */
  pids(): number[];
  /** Stops it before the benchmark ends, where a phase starts one of its own (bench/cold-start.ts). */
  stop?(): Promise<void>;
}

export interface UpstreamOptions {
  chunks: number;
  intervalMs: number;
}

export const tsNode = (file: string, args: string[]) => [process.execPath, ['-r', 'tsx/cjs', join(ROOT, file), ...args]] as const;

/** The port a bench child prints as `{"port":N}` once it listens. */
export async function portFromStdout(s: Started, what: string): Promise<number> {
  return Number((await outputMatch(s, /\{"port":(\d+)\}/, 15_000, `${what} did not start`))[1]);
}

export async function startUpstream(opts: UpstreamOptions): Promise<Target> {
  const [cmd, args] = tsNode('bench/upstream.ts', ['--port', '0', '--chunks', String(opts.chunks), '--interval-ms', String(opts.intervalMs)]);
  const s = start(cmd, [...args], { cwd: ROOT });
  const port = await portFromStdout(s, 'fake upstream');
  return { name: 'direct', base: `http://127.0.0.1:${port}`, headers: { authorization: 'Bearer sk-upstream-bench' }, pids: () => [s.proc.pid!] };
}

/** bench/node-floor.ts: node:http in, undici out, nothing else (the least a Node proxy costs). */
export async function startNodeFloor(upstream: Target, connections = 128, nodeArgs: string[] = []): Promise<Target> {
  const [cmd, args] = tsNode('bench/node-floor.ts', ['--port', '0', '--upstream', upstream.base, '--connections', String(connections)]);
  const s = start(cmd, [...nodeArgs, ...args], { cwd: ROOT });
  const port = await portFromStdout(s, 'node floor proxy');
  return { name: 'node-floor', base: `http://127.0.0.1:${port}`, headers: { authorization: 'Bearer sk-upstream-bench' }, pids: () => [s.proc.pid!], stop: () => stop(s.proc) };
}

export interface GatewayTarget extends Target {
  redis: RedisServer;
  /** SIGTERM and wait for the drain and exit (writes a --cpu-prof profile). */
  stop(): Promise<void>;
  metricsUrl: string;
  configFile: string;
}

/**
 * The gateway with auth (hashed key), a Redis request rate limit per key, a team budget,
 * cost accounting, metrics and one info log line per request. `allLimits` adds a tokens
 * per minute limit, team-level request and token limits, and limit rules of every other kind
 * (tokens per team x model, requests per model, USD per team and day).
 */
export async function startGateway(
  upstream: Target,
  dir: string,
  logFile: string,
  opts: {
    nodeArgs?: string[];
    allLimits?: boolean;
    /** More environment (OTEL_*). */ env?: Record<string, string>;
    name?: TargetName;
    /** Another build's main.js. */ main?: string;
    /** Connections to the upstream (default the gateway's 256; the streams phase holds one per stream). */ maxConnections?: number;
  } = {},
): Promise<GatewayTarget> {
  const redis = await startRedis();
  const key = `sk-bench-${randomBytes(16).toString('hex')}`;
  const hash = `sha256:${createHash('sha256').update(key).digest('hex')}`;
  const [port, metricsPort] = [await freePort(), await freePort()];
  const config = {
    server: { host: '127.0.0.1', port, metrics_port: metricsPort, log_level: 'info' },
    auth: { mode: 'keys', keys: [{ hash, name: 'bench', team: 'bench', project: 'load' }] },
    teams: [
      {
        name: 'bench',
        budget: { daily_usd: 1_000_000, monthly_usd: 10_000_000 },
        ...(opts.allLimits ? { rate_limit: { requests_per_minute: 10_000_000, tokens_per_minute: 1_000_000_000 } } : {}),
      },
    ],
    providers: [
      {
        name: 'fake',
        base_url: `${upstream.base}/v1`,
        api_key: 'sk-upstream-bench',
        ...(opts.maxConnections ? { max_connections: opts.maxConnections } : {}),
        models: [{ name: MODEL, input_per_million: 0.15, output_per_million: 0.6 }],
      },
    ],
    rate_limit: { requests_per_minute: 10_000_000, ...(opts.allLimits ? { tokens_per_minute: 1_000_000_000 } : {}) },
    // Every other kind of limit rule too: tokens per team x model, requests per model, USD per team and day.
    ...(opts.allLimits
      ? {
          limits: [
            { resource: 'tokens', capacity: 1_000_000_000, scope: { team: '*', model: '*' } },
            { resource: 'requests', capacity: 10_000_000, scope: { model: MODEL } },
            { resource: 'usd', window: 'day', capacity: 1_000_000, scope: { team: 'bench' } },
          ],
        }
      : {}),
    cache: { enabled: false },
    redis: { host: redis.host, port: redis.port },
  };
  const configFile = join(dir, `${opts.name ?? 'gateway'}.json.yaml`);
  writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
  // One JSON log line per request, as in production; written to a file or /dev/null, never to our pipe.
  const fd = openSync(logFile, 'w');
  // The flags the gateway runs with in its container (service/core/runtime-flags.ts), unless told otherwise.
  const flags = process.env.BENCH_GATEWAY_NODE_FLAGS !== undefined ? process.env.BENCH_GATEWAY_NODE_FLAGS.split(' ').filter(Boolean) : NODE_FLAGS;
  const s = start(process.execPath, [...flags, ...(opts.nodeArgs ?? []), opts.main ?? join(ROOT, 'dist/service/main.js'), '--config', configFile], {
    cwd: ROOT,
    stdout: fd,
    env: { ...process.env, ...opts.env },
  });
  closeSync(fd);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${base}/ready`, 15_000, s.output);
  } catch (err) {
    await redis.close();
    throw err;
  }
  return {
    name: opts.name ?? 'gateway',
    base,
    headers: { authorization: `Bearer ${key}` },
    pids: () => [s.proc.pid!],
    stop: () => stop(s.proc, 15_000),
    redis,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    configFile,
  };
}

/** Stops a target the phase started (and a gateway's Redis with it); a target without stop() is left to stopAll. */
export async function stopTarget(t: Target): Promise<void> {
  await t.stop?.();
  if ('redis' in t) await (t as GatewayTarget).redis.close();
}

export async function startNginx(upstream: Target, dir: string): Promise<Target> {
  if (!hasCommand('nginx')) throw new Error('nginx is not installed (npm run bench:setup installs nginx-light)');
  const nd = join(dir, 'nginx');
  for (const d of ['', 'tmp']) mkdirSync(join(nd, d), { recursive: true });
  const port = await freePort();
  const up = new URL(upstream.base);
  // One worker, as one gateway process; keep-alive upstream connections; one access-log line per request (buffered).
  const conf = `
worker_processes 1;
daemon off;
pid ${nd}/nginx.pid;
error_log ${nd}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${nd}/access.log combined buffer=64k flush=1s;
  client_body_temp_path ${nd}/tmp/body;
  proxy_temp_path ${nd}/tmp/proxy;
  fastcgi_temp_path ${nd}/tmp/fastcgi;
  uwsgi_temp_path ${nd}/tmp/uwsgi;
  scgi_temp_path ${nd}/tmp/scgi;
  keepalive_requests 1000000;
  upstream fake { server ${up.host}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  writeFileSync(join(nd, 'nginx.conf'), conf);
  const s = start('nginx', ['-p', nd, '-c', join(nd, 'nginx.conf'), '-e', join(nd, 'error.log')], { cwd: nd });
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/v1/models`, 10_000, s.output);
  const master = s.proc.pid!;
  return { name: 'nginx', base, headers: { authorization: 'Bearer sk-upstream-bench' }, pids: () => [master, ...childPids(master)] };
}

const PORTKEY_DIR = join(ROOT, 'bench/peers/node_modules/@portkey-ai/gateway');

export async function startPortkey(upstream: Target): Promise<Target> {
  const entry = join(PORTKEY_DIR, 'build/start-server.js');
  if (!existsSync(entry)) throw new Error('@portkey-ai/gateway is not installed (npm run bench:setup installs it in bench/peers)');
  const port = await freePort();
  // It listens on every interface: the preload forces 127.0.0.1.
  const s = start(process.execPath, ['-r', join(ROOT, 'bench/peers/listen-local.cjs'), entry, `--port=${port}`, '--headless'], {
    cwd: join(ROOT, 'bench/peers'),
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/`, 15_000, s.output);
  return {
    name: 'portkey',
    base,
    headers: { authorization: 'Bearer sk-upstream-bench', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstream.base}/v1` },
    pids: () => [s.proc.pid!],
  };
}

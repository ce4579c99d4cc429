/**
 * A private redis-server for tests: one process per call to startRedis(), on a free
 * 127.0.0.1 port, no persistence (`--save "" --appendonly no`), working directory in a
 * temp folder that stop() removes.
 *
 *   const redis = await startRedis();
 *   redis.url            // redis://127.0.0.1:PORT
 *   await redis.stop();    // SIGTERM, waits for exit (data is gone, as with any Redis without persistence)
 *   await redis.restart(); // same port, empty data set
 *   await redis.close();   // stop and remove the temp folder (call in after())
 *   redis.pause(); redis.resume(); // SIGSTOP / SIGCONT: a hung Redis (connections stay open, commands time out)
 *
 * `stop({ keepData: true })` shuts down with SHUTDOWN SAVE, so the following restart() loads the data again
 * (a Redis with persistence that went away and came back).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { freePort } from './ports';
import { testTempDir } from './temp-dirs';

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** True while the process runs. */
  running(): boolean;
  /** The server's process id while it runs (the benchmark places it on a core). */
  pid(): number | undefined;
  stop(opts?: { keepData?: boolean }): Promise<void>;
  restart(): Promise<void>;
  /** SIGSTOP: the server hangs with its connections open (commands time out instead of failing fast). */
  pause(): void;
  /** SIGCONT: the server resumes and answers what it received while paused. */
  resume(): void;
  /** Stops (if running) and removes the temp folder. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

function assertBinary(): void {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  if (probe.error) throw new Error('redis-server not found on PATH; install it: apt-get install redis-server');
}

/** Sends one inline command (after AUTH when a password is set) and resolves with its first reply line (or rejects on error/timeout). */
function command(port: number, line: string, timeoutMs = 500, password?: string, tls?: RedisTls): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock: Socket = tls ? tlsConnect({ port, host: HOST, ca: readFileSync(tls.caFile), rejectUnauthorized: false }) : new Socket();
    let buf = '';
    const done = (err: Error | null, reply?: string) => {
      sock.destroy();
      if (err) reject(err);
      else resolve(reply as string);
    };
    sock.setTimeout(timeoutMs, () => done(new Error('timeout')));
    sock.once('error', (err) => done(err));
    sock.once('close', () => done(new Error('connection closed without a reply')));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const lines = buf.split('\r\n');
      const want = password === undefined ? 1 : 2; // with AUTH first, the command's reply is the second line
      if (lines.length > want) done(null, lines[want - 1]);
    });
    const send = () => sock.write(password === undefined ? `${line}\r\n` : `AUTH ${password}\r\n${line}\r\n`);
    if (tls) sock.once('secureConnect', send);
    else sock.connect(port, HOST, send);
  });
}

async function waitForPing(port: number, child: ChildProcess, deadlineMs = 5000, password?: string, tls?: RedisTls, stderr = () => ''): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode} before answering PING: ${stderr()}`);
    try {
      if ((await command(port, 'PING', 500, password, tls)) === '+PONG') return;
    } catch {
      /* not yet listening */
    }
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer PING within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The server's TLS files (PEM): with them Redis listens only on TLS (--port 0 --tls-port), clients need no certificate. */
export interface RedisTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/**
 * `password`: start with --requirepass (url then carries it: redis://:PASSWORD@host:port).
 * `tls`: listen with TLS only; url is then rediss://host:port.
 */
export async function startRedis(opts: { password?: string; tls?: RedisTls } = {}): Promise<RedisServer> {
  assertBinary();
  const dir = testTempDir('aigw-redis-');
  const port = await freePort();
  let child: ChildProcess | null = null;
  const password = opts.password;
  const tls = opts.tls;

  const launch = async () => {
    const t = tls;
    const listen = t
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', t.certFile, '--tls-key-file', t.keyFile, '--tls-ca-cert-file', t.caFile, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
    const args = [...listen, '--bind', HOST, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning'];
    if (opts.password !== undefined) args.push('--requirepass', opts.password);
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => void (output = (output + d.toString('utf8')).slice(-2000));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    child = proc;
    await waitForPing(port, proc, 5000, opts.password, t, () => output);
    // A snapshot from stop({ keepData: true }) is loaded once; later plain stops lose data again.
    rmSync(join(dir, 'dump.rdb'), { force: true });
  };

  const stop = async (opts: { keepData?: boolean } = {}) => {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    // SHUTDOWN SAVE snapshots and exits in one step: no write is acknowledged after the snapshot.
    // It closes the connection without a reply, so the "error" is the expected outcome.
    if (opts.keepData) await command(port, 'SHUTDOWN SAVE', 5000, password, tls).catch(() => undefined);
    proc.kill('SIGCONT'); // in case it was paused
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    child = null;
  };

  await launch();
  return {
    host: HOST,
    port,
    url: `${tls ? 'rediss' : 'redis'}://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}${HOST}:${port}`,
    running: () => child !== null && child.exitCode === null,
    pid: () => child?.pid,
    stop,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    restart: async () => {
      await stop();
      await launch();
    },
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

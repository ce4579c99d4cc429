/**
 * Redis over TLS (rediss://, redis.tls): a real redis-server listening only on TLS, with a
 * throwaway CA and server certificate made by openssl for this run.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import Redis from 'ioredis';
import OpenAI from 'openai';
import { parseConfig } from '../../service/config/schema';
import { createRedisClient } from '../../service/redis/client';
import { startGateway } from '../../service/server';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { makeTestCerts, TestCerts } from '../helpers/tls-certs';
import { uniquePrefix, waitFor } from './fixtures';

describe('Redis over TLS (rediss://) with a custom CA', function () {
  let certs: TestCerts;
  let redis: RedisServer;
  let up: FakeUpstream;

  before(async function () {
    certs = makeTestCerts();
    try {
      redis = await startRedis({ tls: certs });
    } catch (err) {
      const message = (err as Error).message;
      if (!/tls/i.test(message)) throw err;
      console.warn(`    skipped: this redis-server was built without TLS support (${message.trim().split('\n')[0]})`);
      this.skip();
    }
    up = await startFakeUpstream('p');
  });
  after(async () => {
    await redis?.close();
    await up?.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  const gatewayOn = (redisBlock: Record<string, unknown>) =>
    startTestGateway({
      auth: { mode: 'none' },
      rate_limit: { requests_per_minute: 1000 },
      providers: [provider('p', up.url, ['m'])],
      redis: { command_timeout_ms: 1000, ...redisBlock },
    });
  const ask = (gw: TestGateway) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 }).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  const redisState = async (gw: TestGateway) => ((await (await fetch(`${gw.url}/ready`)).json()) as { redis: string }).redis;

  it('the gateway keeps its limits and spend in Redis through rediss:// and redis.tls.ca_file', async () => {
    const prefix = uniquePrefix();
    const gw = await gatewayOn({ url: redis.url, key_prefix: prefix, tls: { ca_file: certs.caFile } });
    try {
      await waitFor(async () => (await redisState(gw)) === 'up', 'redis up over TLS');
      assert.equal((await ask(gw)).choices[0].message.content, 'Hello from p');
      await gw.gateway.ctx.tenancy.flush();
      // Read back with a separate TLS client: the rate-limit and spend keys are in this Redis.
      const reader = new Redis(redis.url, { tls: { ca: [readFileSync(certs.caFile)] }, lazyConnect: true });
      try {
        await reader.connect();
        const keys = await reader.keys(`${prefix}*`);
        assert.ok(keys.some((k) => k.includes('rl:')) && keys.some((k) => k.includes('spend')), `keys: ${keys.join(', ')}`);
      } finally {
        reader.disconnect();
      }
    } finally {
      await gw.shutdown();
    }
  });

  it('host and port with a redis.tls block use TLS too; servername is the name the certificate is checked against', async () => {
    const connectWith = async (servername: string) => {
      const config = parseConfig({
        auth: { mode: 'none' },
        providers: [provider('p', up.url, ['m'])],
        redis: { host: '127.0.0.1', port: redis.port, command_timeout_ms: 1000, tls: { ca_file: certs.caFile, servername } },
      });
      const errors: string[] = [];
      const client = createRedisClient(config, { logger: { info: () => {}, warn: (o) => errors.push(JSON.stringify(o)) } })!;
      try {
        await waitFor(() => client.status === 'ready' || errors.length > 0, 'ready or an error');
        return client.status === 'ready' ? await client.ping() : errors[0];
      } finally {
        client.disconnect();
      }
    };
    assert.equal(await connectWith('redis.test'), 'PONG');
    assert.match(await connectWith('other.test'), /TLS: ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('a CA that did not sign the server certificate: the gateway serves on its fallbacks and logs why Redis is down', async () => {
    const gw = await gatewayOn({ url: redis.url, key_prefix: uniquePrefix(), tls: { ca_file: certs.otherCaFile } });
    try {
      await waitFor(() => gw.logs.some((l) => l.includes('redis unreachable')), 'the redis-down log line');
      const line = gw.logs.find((l) => l.includes('redis unreachable'))!;
      assert.match(line, /TLS: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT)[^"]*check redis\.tls\.ca_file/);
      assert.match(await redisState(gw), /^down/);
      assert.equal((await ask(gw)).choices[0].message.content, 'Hello from p', 'served with in-memory fallbacks');
    } finally {
      await gw.shutdown();
    }
  });

  it('an unreadable redis.tls.ca_file stops the start with a message naming the key', async () => {
    const config = parseConfig({
      auth: { mode: 'none' },
      providers: [provider('p', up.url, ['m'])],
      redis: { url: redis.url, tls: { ca_file: '/nonexistent/ca.pem' } },
      server: { host: '127.0.0.1', port: 0, metrics_port: 0, log_level: 'silent' },
    });
    await assert.rejects(startGateway(config), /redis\.tls\.ca_file: cannot read \/nonexistent\/ca\.pem: ENOENT/);
  });
});

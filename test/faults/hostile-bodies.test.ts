/**
 * Issue 22, item 3: pass-through bodies are checked whatever they claim to be. Through real
 * HTTP, a real redis-server and a scripted provider that records what reaches it:
 * - a JSON body sent as text/plain, text/json, application/vnd.api+json, form-encoded or
 *   multipart (on a path that takes no upload) is parsed and its ids checked; a body that is
 *   not JSON is a 400; a multipart upload naming an object by id (file_id) is refused;
 * - `tools[].container` (an id, or `{type: "auto", file_ids}`) and `item_reference` ids are
 *   checked; the items of a team's own responses (JSON and streamed) may be referenced;
 * - id lists are deduplicated and capped (1,000 distinct ids, 400 above);
 * - admission (key limits) comes before any ownership lookup, and all lookups of one request
 *   are one Redis round trip (the GET/MGET commands on owner records, seen through MONITOR).
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { MAX_REFERENCED_IDS } from '../../service/core/passthrough-paths';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { assertOpenAIError, post, waitFor } from './helpers';

const KEYS = { alice: 'sk-gw-hb-alice', bob: 'sk-gw-hb-bob', limited: 'sk-gw-hb-limited' };
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

describe('issue 22 item 3: pass-through bodies checked whatever they claim to be', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let r: Redis;
  let up: FakeUpstream;
  let gw: TestGateway;
  let fileA: string;

  let monitor: Redis;
  let monitorOwner: Redis;
  const seen: string[][] = [];
  /** Where the Redis command log stands, once every command sent so far is in it (a marker ECHO comes back through MONITOR). */
  async function mark(): Promise<number> {
    const m = `mark-${seen.length}-${Math.random()}`;
    await r.echo(m);
    await waitFor(() => seen.some((a) => a[0] === 'echo' && a[1] === m), 'the MONITOR marker');
    return seen.length;
  }
  /** The ownership lookups (GET/MGET of obj: keys) Redis served since `from`: one entry per command, with its key count. */
  async function lookupsSince(from: number): Promise<Array<{ cmd: string; keys: number }>> {
    await mark();
    return seen
      .slice(from)
      .filter((a) => (a[0] === 'get' || a[0] === 'mget') && a.slice(1).some((k) => k.startsWith('aigw:obj:')))
      .map((a) => ({ cmd: a[0], keys: a.length - 1 }));
  }
  /** Records an object for a team as the gateway does when the team creates it. */
  const own = (id: string, team: string) => r.set(`aigw:obj:${id}`, `${team}\u0000up`, 'EX', 600);

  before(async () => {
    redis = await startRedis();
    r = new Redis(redis.url);
    // monitor() opens a connection of its own: the client it is called on is closed too, in after().
    monitorOwner = new Redis(redis.url);
    monitor = await monitorOwner.monitor();
    monitor.on('monitor', (_time: string, args: unknown[]) =>
      seen.push(args.map((x) => (String(x).toLowerCase() === 'get' || String(x).toLowerCase() === 'mget' || String(x).toLowerCase() === 'echo' ? String(x).toLowerCase() : String(x)))),
    );
    up = await startFakeUpstream('up');
    gw = await startTestGateway({
      auth: {
        keys: [
          { hash: hashKey(KEYS.alice), name: 'alice', team: 'red' },
          { hash: hashKey(KEYS.bob), name: 'bob', team: 'blue' },
          { hash: hashKey(KEYS.limited), name: 'limited', team: 'green', rate_limit: { requests_per_minute: 1 } },
        ],
      },
      teams: [{ name: 'red' }, { name: 'blue' }, { name: 'green' }],
      providers: [provider('up', up.url, ['m'])],
      passthrough: [
        { path: '/v1/files', methods: ['POST', 'GET'] },
        { path: '/v1/batches', methods: ['POST'] },
        { path: '/v1/vector_stores', methods: ['POST'] },
        { path: '/v1/containers', methods: ['POST'] },
      ],
      redis: { url: redis.url, command_timeout_ms: 2000 }, // not a test of Redis timeouts (100 ms flaps on a busy machine)
    });
    const until = Date.now() + 5000;
    while ((await metricValue(gw.metricsUrl, 'aigw_redis_up')) !== 1 && Date.now() < until) await new Promise((res) => setTimeout(res, 25));
    const alice = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEYS.alice, maxRetries: 0 });
    fileA = (await alice.files.create({ file: await toFile(Buffer.from('{"a":1}\n'), 'a.jsonl'), purpose: 'batch' })).id;
  });
  after(async () => {
    monitor?.disconnect();
    monitorOwner?.disconnect();
    r?.disconnect();
    await gw?.shutdown();
    await up?.close();
    await redis?.close();
  });

  const batch = () => JSON.stringify({ input_file_id: fileA, endpoint: '/v1/chat/completions', completion_window: '24h' });

  for (const type of ['text/plain', 'text/json', 'application/vnd.api+json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
    it(`a JSON body sent as ${type} naming another team's file: 404 object_not_found, nothing reaches the provider`, async () => {
      const n = up.received.length;
      const res = await post(gw.url, '/v1/batches', batch(), { ...auth(KEYS.bob), 'content-type': type });
      assert.equal(res.status, 404, res.text);
      assert.equal(assertOpenAIError(res.json).code, 'object_not_found');
      assert.equal(up.received.length, n);
    });
  }

  it('the owner sending the same body as text/plain is forwarded, as JSON', async () => {
    const n = up.received.length;
    const res = await post(gw.url, '/v1/batches', batch(), { ...auth(KEYS.alice), 'content-type': 'text/plain' });
    assert.equal(up.received.length, n + 1, res.text);
    assert.equal(up.received[n].headers['content-type'], 'application/json');
    assert.equal(up.received[n].body.input_file_id, fileA);
  });

  for (const [type, body] of [
    ['application/x-www-form-urlencoded', `input_file_id=${'x'}&endpoint=/v1/chat/completions`],
    ['text/plain', 'not json'],
    ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="input_file_id"\r\n\r\nfile-1\r\n--x--\r\n'],
  ] as const) {
    it(`a body that is not JSON (${type.split(';')[0]}) on a path without uploads: 400 invalid_json, nothing forwarded`, async () => {
      const n = up.received.length;
      const res = await post(gw.url, '/v1/batches', body, { ...auth(KEYS.bob), 'content-type': type });
      assert.equal(res.status, 400, res.text);
      assert.equal(assertOpenAIError(res.json).code, 'invalid_json');
      assert.equal(up.received.length, n);
    });
  }

  it('a multipart upload naming an object by id (file_id on /v1/containers/{id}/files) is refused with a 400', async () => {
    await own('cntr_blue', 'blue');
    const body = `--x\r\nContent-Disposition: form-data; name="file_id"\r\n\r\n${fileA}\r\n--x--\r\n`;
    const n = up.received.length;
    const res = await post(gw.url, '/v1/containers/cntr_blue/files', body, { ...auth(KEYS.bob), 'content-type': 'multipart/form-data; boundary=x' });
    assert.equal(res.status, 400, res.text);
    assert.equal(assertOpenAIError(res.json).code, 'invalid_multipart_field');
    assert.equal(up.received.length, n);
  });

  it("tools[].container naming another team's container, or its file_ids: 404 on /v1/responses", async () => {
    await own('cntr_red', 'red');
    const n = up.received.length;
    for (const container of ['cntr_red', { type: 'auto', file_ids: [fileA] }]) {
      const res = await post(gw.url, '/v1/responses', { model: 'm', input: 'x', tools: [{ type: 'code_interpreter', container }] }, auth(KEYS.bob));
      assert.equal(res.status, 404, res.text);
      assert.equal(assertOpenAIError(res.json).code, 'object_not_found');
    }
    assert.equal(up.received.length, n);
    const mine = await post(gw.url, '/v1/responses', { model: 'm', input: 'x', tools: [{ type: 'code_interpreter', container: 'cntr_red' }] }, auth(KEYS.alice));
    assert.equal(mine.status, 200, mine.text);
  });

  it("item_reference: another team's item is 404; the owner's items (JSON and streamed responses) may be referenced", async () => {
    const created = await post(gw.url, '/v1/responses', { model: 'm', input: 'hello' }, auth(KEYS.alice));
    const item = (created.json as { output: Array<{ id: string }> }).output[0].id;
    const streamed = await post(gw.url, '/v1/responses', { model: 'm', input: 'hello', stream: true }, auth(KEYS.alice));
    const streamedItem = /"type":"response\.output_item\.done".*?"item":\{[^}]*"id":"([^"]+)"/.exec(streamed.text)?.[1];
    assert.ok(streamedItem, streamed.text.slice(0, 400));
    let n = up.received.length;
    for (const id of [item, streamedItem]) {
      const theirs = await post(gw.url, '/v1/responses', { model: 'm', input: [{ type: 'item_reference', id }] }, auth(KEYS.bob));
      assert.equal(theirs.status, 404, theirs.text);
      assert.equal(up.received.length, n);
      const ours = await post(
        gw.url,
        '/v1/responses',
        {
          model: 'm',
          input: [
            { type: 'item_reference', id },
            { role: 'user', content: 'go on' },
          ],
        },
        auth(KEYS.alice),
      );
      assert.equal(ours.status, 200, ours.text);
      n = up.received.length;
    }
  });

  it(`more than ${MAX_REFERENCED_IDS} distinct ids: 400 too_many_object_ids, no lookup made, nothing forwarded`, async () => {
    const ids = Array.from({ length: MAX_REFERENCED_IDS + 1 }, (_x, i) => `file-many-${i}`);
    const n = up.received.length;
    const from = await mark();
    const res = await post(gw.url, '/v1/vector_stores', { name: 'v', file_ids: ids }, auth(KEYS.alice));
    assert.equal(res.status, 400, res.text);
    assert.equal(assertOpenAIError(res.json).code, 'too_many_object_ids');
    assert.deepEqual(await lookupsSince(from), []);
    assert.equal(up.received.length, n);
  });

  it('20,000 copies of one owned id are deduplicated: one lookup of one key, forwarded', async () => {
    const n = up.received.length;
    const from = await mark();
    const res = await post(gw.url, '/v1/vector_stores', { name: 'v', file_ids: Array(20_000).fill(fileA) }, auth(KEYS.alice));
    assert.equal(up.received.length, n + 1, res.text);
    assert.deepEqual(await lookupsSince(from), [{ cmd: 'get', keys: 1 }]);
  });

  it('all ownership lookups of one request (path id and body ids) are one Redis round trip', async () => {
    const ids = Array.from({ length: 50 }, (_x, i) => `file-red-${i}`);
    await Promise.all(ids.map((id) => own(id, 'red')));
    const n = up.received.length;
    const from = await mark();
    const res = await post(gw.url, '/v1/vector_stores', { name: 'v', file_ids: ids, chunking_strategy: { type: 'auto' } }, auth(KEYS.alice));
    assert.equal(up.received.length, n + 1, res.text);
    assert.deepEqual(await lookupsSince(from), [{ cmd: 'mget', keys: 50 }]);
  });

  it('admission comes first: a key over its rate limit naming 500 ids gets 429 and costs no ownership lookup', async () => {
    const ids = Array.from({ length: 500 }, (_x, i) => `file-x-${i}`);
    const first = await post(gw.url, '/v1/vector_stores', { name: 'v', file_ids: [] }, auth(KEYS.limited));
    assert.notEqual(first.status, 429, first.text);
    const n = up.received.length;
    const from = await mark();
    const res = await post(gw.url, '/v1/vector_stores', { name: 'v', file_ids: ids }, auth(KEYS.limited));
    assert.equal(res.status, 429, res.text);
    assert.deepEqual(await lookupsSince(from), [], 'no GET or MGET for the ids of a refused request');
    assert.equal(up.received.length, n);
  });
});

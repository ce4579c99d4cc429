/**
 * The body the provider receives (service/upstream/client.ts): a stream's is given to undici as a
 * one-shot stream so the open stream keeps no copy of its prompt, a JSON answer's as bytes; either
 * way the provider gets the whole body, byte for byte, with its Content-Length and no chunked
 * encoding, a long prompt with multi-byte characters included. What the stream no longer keeps
 * is a memory figure: `npm run bench -- --stream-heap --prompt-kb 20`.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';

describe('the request body a provider receives', () => {
  let up: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  // ~60 KB of UTF-8: multi-byte characters, quotes and escapes, so bytes and characters differ.
  const long = 'Résumé "naïve" 字 😀 \\ line\n'.repeat(2000);

  before(async () => {
    up = await startFakeUpstream('alpha');
    gw = await startTestGateway({ auth: { mode: 'none' }, providers: [provider('alpha', up.url, [{ name: 'm', unpriced: true }])] });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused-in-auth-none', maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await up.close();
  });

  for (const [stream, prompt] of [
    [true, long],
    [false, long],
    [true, 'A few words.'],
  ] as const) {
    it(`${stream ? 'a stream' : 'a JSON answer'}, a ${prompt.length > 100 ? 'long' : 'short'} prompt: all of it, with Content-Length and no chunked encoding`, async () => {
      up.received.length = 0;
      if (stream) {
        let text = '';
        for await (const chunk of await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: prompt }] })) text += chunk.choices[0]?.delta?.content ?? '';
        assert.ok(text.length > 0);
      } else {
        const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: prompt }] });
        assert.ok(r.choices[0].message.content);
      }
      assert.equal(up.received.length, 1);
      const got = up.received[0];
      assert.equal((got.body.messages as Array<{ content: string }>)[0].content, prompt);
      assert.equal(got.body.stream, stream || undefined);
      assert.equal(got.headers['transfer-encoding'], undefined);
      assert.equal(Number(got.headers['content-length']), Buffer.byteLength(JSON.stringify(got.body)));
    });
  }
});

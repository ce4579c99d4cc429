/** The endpoint table as the catalog, the upstream client and cost read it: pure, table-tested. */
import assert from 'node:assert/strict';
import { chatUsage, responseOutputText, responsesUsage } from '../../service/core/endpoints';
import { parseConfig } from '../../service/config/schema';
import { costUsd } from '../../service/cost/cost';
import { estimatePromptTokens } from '../../service/cost/tokens';
import { buildCatalog } from '../../service/routing/catalog';
import { targetFor, targetForPath } from '../../service/upstream/client';

const config = parseConfig({
  auth: { mode: 'none' },
  providers: [
    {
      name: 'oa',
      base_url: 'http://127.0.0.1:1/v1',
      models: [
        { name: 'm', unpriced: true },
        { name: 'e', kind: 'embedding', unpriced: true },
      ],
    },
    { name: 'az', type: 'azure', api_version: '2025-04-01-preview', base_url: 'https://res.openai.azure.com', models: [{ name: 'm', upstream_name: 'dep-m', unpriced: true }] },
    {
      name: 'az2',
      type: 'azure',
      api_version: '2025-04-01-preview',
      base_url: 'https://res2.openai.azure.com',
      endpoints: ['chat', 'responses'],
      models: [
        { name: 'm', upstream_name: 'dep2', unpriced: true },
        { name: 'only-az', upstream_name: 'dep3', unpriced: true },
      ],
    },
    { name: 'old', base_url: 'http://127.0.0.1:2/v1', endpoints: ['chat', 'completion', 'embedding'], models: [{ name: 'legacy', unpriced: true }] },
  ],
});
const catalog = buildCatalog(config);
const names = (model: string, endpoint: Parameters<typeof catalog.resolveFor>[1]) => catalog.resolveFor(model, endpoint)?.candidates.map((c) => c.provider.name);

describe('endpoint table', () => {
  it('providers serve their declared endpoints, else their type defaults (azure: no responses)', () => {
    assert.deepEqual(names('m', 'chat'), ['oa', 'az', 'az2']);
    assert.deepEqual(names('m', 'responses'), ['oa', 'az2']);
    assert.deepEqual(names('m', 'completion'), ['oa', 'az']);
  });

  it('a model no provider serves the endpoint for is "endpoint" (404); a model of the wrong kind is "kind" (400)', () => {
    assert.equal(catalog.resolveFor('legacy', 'responses')!.unserved, 'endpoint');
    assert.equal(catalog.resolveFor('e', 'chat')!.unserved, 'kind');
    assert.equal(catalog.resolveFor('m', 'responses')!.unserved, undefined);
  });

  it("upstream paths: openai /responses, azure's v1 surface for responses (deployment in the body), others per deployment", () => {
    const [oa, az, az2] = config.providers;
    assert.equal(targetFor(oa, 'responses', 'm').path, '/v1/responses');
    assert.equal(targetFor(az2, 'responses', 'dep2').path, '/openai/v1/responses');
    assert.equal(targetFor(az, 'chat', 'dep-m').path, '/openai/deployments/dep-m/chat/completions?api-version=2025-04-01-preview');
    assert.equal(targetForPath(oa, '/responses/resp_1/input_items', '?limit=5').path, '/v1/responses/resp_1/input_items?limit=5');
    assert.equal(targetForPath(az, '/responses/resp_1/input_items', '?limit=5').path, '/openai/v1/responses/resp_1/input_items?limit=5');
  });

  it('usage: chat and Responses shapes, cached and reasoning details', () => {
    assert.deepEqual(responsesUsage({ input_tokens: 10, input_tokens_details: { cached_tokens: 4 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 15 }), {
      prompt_tokens: 10,
      completion_tokens: 5,
      cached_tokens: 4,
      reasoning_tokens: 2,
    });
    assert.deepEqual(chatUsage({ prompt_tokens: 7, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 0 } }), { prompt_tokens: 7, completion_tokens: 1 });
    assert.equal(responsesUsage({ prompt_tokens: 1 }), undefined);
    assert.equal(
      responseOutputText({
        output: [
          { type: 'reasoning', content: [] },
          {
            type: 'message',
            content: [
              { type: 'output_text', text: 'a' },
              { type: 'refusal', refusal: 'x' },
              { type: 'output_text', text: 'b' },
            ],
          },
        ],
      }),
      'ab',
    );
  });

  it('cost: cached prompt tokens at the cached price, reasoning tokens as output', () => {
    const usage = { prompt_tokens: 1_000_000, completion_tokens: 1_000_000, cached_tokens: 400_000, reasoning_tokens: 300_000 };
    assert.equal(costUsd(usage, { input_per_million: 2, cached_input_per_million: 0.5, output_per_million: 8 }), 0.6 * 2 + 0.4 * 0.5 + 8);
    assert.equal(costUsd(usage, { input_per_million: 2, output_per_million: 8 }), 2 + 8, 'no cached price: every prompt token at the input price');
  });

  it('estimated prompt tokens of a Responses request count instructions and input item text', () => {
    const plain = estimatePromptTokens({ input: 'hello world' });
    assert.ok(plain > 0);
    assert.equal(estimatePromptTokens({ input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello world' }] }] }), plain);
    assert.ok(estimatePromptTokens({ instructions: 'Be brief.', input: 'hello world' }) > plain);
  });
});

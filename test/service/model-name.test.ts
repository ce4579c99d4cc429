/** The model-name rewriters: pure, table-tested. */
import assert from 'node:assert/strict';
import { parseConfig } from '../../service/config/schema';
import { modelRewriter, publicNameRewriter } from '../../service/http/model-name';

const config = (expose: boolean) =>
  parseConfig({
    auth: { mode: 'none' },
    routing: { expose_upstream_model: expose },
    providers: [
      {
        name: 'az',
        type: 'azure',
        api_version: 'v',
        base_url: 'http://127.0.0.1:1',
        models: [
          { name: 'gpt-4o', upstream_name: 'prod-gpt4o-east', unpriced: true },
          { name: 'plain', unpriced: true },
        ],
      },
    ],
  });

describe('model names: the requested name in answers, the upstream one only when exposed', () => {
  const cases: Array<[string, string, string]> = [
    ['chat body', '{"id":"x","model":"prod-gpt4o-east","choices":[]}', '{"id":"x","model":"gpt-4o","choices":[]}'],
    ['spaces after the colon (Python json)', '{"model": "prod-gpt4o-east-2024"}', '{"model":"gpt-4o"}'],
    ['escaped quotes in the value', '{"model":"a\\"b"}', '{"model":"gpt-4o"}'],
    [
      'Responses event with a nested response',
      'event: response.created\ndata: {"type":"response.created","response":{"model":"prod-gpt4o-east"}}\n\n',
      'event: response.created\ndata: {"type":"response.created","response":{"model":"gpt-4o"}}\n\n',
    ],
    ['a "model" key inside tool-call arguments (an escaped JSON string) is left alone', '{"arguments":"{\\"model\\":\\"keep\\"}"}', '{"arguments":"{\\"model\\":\\"keep\\"}"}'],
  ];
  for (const [what, input, want] of cases) {
    it(what, () => assert.equal(modelRewriter(config(false), { model: 'gpt-4o', upstreamModel: 'prod-gpt4o-east' })!(input), want));
  }

  it('no rewriter (no cost) for an unmapped model or when routing.expose_upstream_model is on', () => {
    assert.equal(modelRewriter(config(false), { model: 'plain', upstreamModel: 'plain' }), undefined);
    assert.equal(modelRewriter(config(true), { model: 'gpt-4o', upstreamModel: 'prod-gpt4o-east' }), undefined);
  });

  it('stored objects: a provider upstream_name back to its public name, other names untouched', () => {
    const r = publicNameRewriter(config(false), 'az')!;
    assert.equal(r('{"model":"prod-gpt4o-east","x":{"model":"other"}}'), '{"model":"gpt-4o","x":{"model":"other"}}');
    assert.equal(publicNameRewriter(config(true), 'az'), undefined);
  });
});

/**
 * The OpenAI inbound APIs (chat, completions, embeddings, responses): requests validated by
 * the endpoint table, sent to OpenAI-type providers byte for byte (their model name and the
 * stream usage option set) and translated by the adapter for other wire formats; answers and
 * streams relayed as they come (zero copy for OpenAI-type providers).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Endpoint, ENDPOINTS } from '../core/endpoints';
import { adapterFor } from '../providers/registry';
import type { Candidate } from '../routing/catalog';
import { relaySse } from '../upstream/sse-relay';
import { openAiErrors } from './errors';
import type { InboundSpec, RelayArgs, StreamResult } from './types';
import { validateRequest, ValidRequest } from './validate';

/** Bodies per candidate: its upstream model name, and a request for usage on streams; translated for other wire formats. */
function openAiBodies(endpoint: Endpoint) {
  const spec = ENDPOINTS[endpoint];
  return (req: ValidRequest): ((c: Candidate) => string) => {
    const memo = new Map<string, string>();
    return (c) => {
      const translation = adapterFor(c.provider.type).translation;
      const key = translation ? `${c.provider.name}\u0000${c.upstreamModel}` : c.upstreamModel;
      let s = memo.get(key);
      if (s === undefined) {
        if (translation) s = translation.requestBody(endpoint, req.body, c.upstreamModel, c.provider, req.stream);
        else {
          const body: Record<string, unknown> = { ...req.body, model: c.upstreamModel };
          if (req.stream && spec.streamUsageOption) body.stream_options = { ...(req.body.stream_options as object), include_usage: true };
          s = JSON.stringify(body);
        }
        memo.set(key, s);
      }
      return s;
    };
  };
}

function relayOpenAi(endpoint: Endpoint) {
  const typed = endpoint === 'responses';
  return async ({ handle, res, valid, rewrite }: RelayArgs): Promise<StreamResult> => {
    const r = await relaySse(handle, res, !valid.clientWantsUsage, typed, rewrite);
    const end = r.clientGone ? 'client_gone' : (r.interrupted ?? 'completed');
    // Chat and completions send usage once, after the last choice; the Responses API in its final event.
    return { end, usage: r.usage, usageFinal: r.usage !== undefined, model: r.model, outputText: r.outputText, responseId: r.responseId };
  };
}

function openAiSpec(endpoint: Endpoint): InboundSpec {
  const spec = ENDPOINTS[endpoint];
  return {
    name: endpoint,
    path: spec.path,
    endpoint,
    authorization: (headers: IncomingHttpHeaders) => headers.authorization,
    validate: (body) => validateRequest(endpoint, body),
    bodyFor: openAiBodies(endpoint),
    answer: ({ raw, parsed }, _c, _valid, rewrite) => ({
      body: rewrite ? rewrite(raw.toString('utf8')) : raw,
      usage: spec.usage(parsed),
      outputText: spec.outputText(parsed),
      model: parsed.model,
      id: parsed.id,
    }),
    relayStream: relayOpenAi(endpoint),
    errors: openAiErrors,
    cacheable: true,
    storesResponses: endpoint === 'responses',
  };
}

export const OPENAI_INBOUND: readonly InboundSpec[] = (['chat', 'completion', 'embedding', 'responses'] as const).map(openAiSpec);

/**
 * The OpenAI inbound APIs (chat, completions, embeddings, responses): requests validated by
 * the endpoint table, sent to OpenAI-type providers byte for byte (their model name and the
 * stream usage option set) and translated by the adapter for other wire formats; answers and
 * streams relayed as they come (zero copy for OpenAI-type providers).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Endpoint, ENDPOINTS } from '../core/endpoints';
import { adapterFor } from '../providers/registry';
import { itemIds } from '../tenancy/objects';
import type { Candidate } from '../routing/catalog';
import type { ServerResponse } from 'node:http';
import { relayEvents } from '../upstream/event-relay';
import { breakReason, relaySse, sseErrorEvent, typedErrorEvent } from '../upstream/sse-relay';
import { continueMessages, continueResponses } from './continuation';
import { ResponsesSplice } from './continuation-splice';
import { openAiErrors } from './errors';
import type { ContinuationSpec, InboundSpec, RelayArgs, StreamResult } from './types';
import { validateRequest, ValidRequest } from './validate';

/** Bodies per candidate: its upstream model name, and a request for usage on streams; translated for other wire formats. */
function openAiBodies(endpoint: Endpoint) {
  const spec = ENDPOINTS[endpoint];
  return (req: ValidRequest): ((c: Candidate) => Buffer) => {
    const memo = new Map<string, Buffer>();
    return (c) => {
      const translation = adapterFor(c.provider.type).translation;
      const key = translation ? `${c.provider.name}\u0000${c.upstreamModel}` : c.upstreamModel;
      let s = memo.get(key);
      if (s === undefined) {
        if (translation) s = Buffer.from(translation.requestBody(endpoint, req.body, c.upstreamModel, c.provider, req.stream), 'utf8');
        else {
          const body: Record<string, unknown> = { ...req.body, model: c.upstreamModel };
          if (req.stream && spec.streamUsageOption) body.stream_options = { ...(req.body.stream_options as object), include_usage: true };
          s = Buffer.from(JSON.stringify(body), 'utf8');
        }
        memo.set(key, s);
      }
      return s;
    };
  };
}

function relayOpenAi(endpoint: Endpoint) {
  const typed = endpoint === 'responses';
  return async ({ handle, res, valid, rewrite }: RelayArgs, hold: boolean): Promise<StreamResult> => {
    const r = await relaySse(handle, res, !valid.clientWantsUsage, typed, rewrite, hold);
    const end = r.clientGone ? 'client_gone' : (r.interrupted ?? 'completed');
    // Chat and completions send usage once, after the last choice; the Responses API in its final event.
    return {
      end,
      usage: r.usage,
      usageFinal: r.usage !== undefined,
      model: r.model,
      outputText: r.outputText,
      sentText: r.outputText,
      toolCalls: r.toolCalls === true,
      dropped: r.dropped,
      responseId: r.responseId,
      itemId: r.itemId,
      itemIds: r.itemIds,
      sequence: r.sequence,
    };
  };
}

const endOf = (r: StreamResult): 'cut' | 'invalid' => (r.end === 'invalid' ? 'invalid' : 'cut');

/** Chat: the continuation's chunks go on as they come (one finish_reason and one usage chunk, the continuation's). */
const chatContinuation: ContinuationSpec = {
  request: continueMessages,
  async relay(a, prior, hold) {
    const out = await relayOpenAi('chat')(a, hold);
    return { ...out, sentText: prior.sentText + out.outputText, toolCalls: prior.toolCalls || out.toolCalls };
  },
  end(res: ServerResponse, prior) {
    if (!res.writableEnded) res.end(sseErrorEvent(...breakReason(endOf(prior))));
  },
};

/** Responses: the continuation's events spliced into the same response, item and sequence. */
const responsesContinuation: ContinuationSpec = {
  request: continueResponses,
  async relay({ handle, res, rewrite }, prior, hold) {
    const splice = new ResponsesSplice(prior);
    const errorEvent = (message: string) => typedErrorEvent(message, 'stream_interrupted', splice.sequence + 1);
    const out = await relayEvents(handle, res, splice, errorEvent, rewrite, hold);
    const end = out.clientGone ? 'client_gone' : (out.interrupted ?? 'completed');
    return {
      ...prior,
      end,
      usage: splice.usage,
      usageFinal: splice.usageFinal,
      model: splice.model,
      outputText: splice.outputText,
      sentText: prior.sentText + splice.outputText,
      toolCalls: prior.toolCalls || splice.toolCalls,
      sequence: splice.sequence,
    };
  },
  end(res, prior) {
    const [message, code] = breakReason(endOf(prior));
    if (!res.writableEnded) res.end(typedErrorEvent(message, code, (prior.sequence ?? -1) + 1));
  },
};

const CONTINUATIONS: Partial<Record<Endpoint, ContinuationSpec>> = { chat: chatContinuation, responses: responsesContinuation };

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
      outputText: () => spec.outputText(parsed),
      model: parsed.model,
      id: parsed.id,
      itemIds: endpoint === 'responses' ? itemIds(parsed) : undefined,
    }),
    relayStream: relayOpenAi(endpoint),
    continuation: CONTINUATIONS[endpoint],
    errors: openAiErrors,
    cacheable: true,
    storesResponses: endpoint === 'responses',
  };
}

export const OPENAI_INBOUND: readonly InboundSpec[] = (['chat', 'completion', 'embedding', 'responses'] as const).map(openAiSpec);

/**
 * POST /v1/messages for Anthropic-shaped clients (the key as x-api-key or a Bearer token),
 * routed as chat: an `anthropic` provider gets the body as it is (its model name mapped) and
 * answers natively; any other provider gets it as an OpenAI chat request (translated on by its
 * adapter for other wire formats), and its answer and stream come back in Anthropic's shape
 * and events. Errors are in Anthropic's shape.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { chatUsage } from '../core/endpoints';
import { badRequest } from '../core/errors';
import { ChatToMessagesStream, chatToMessage, MessagesStreamObserver, Observed } from '../messages/from-chat';
import { messagesToChat } from '../messages/to-chat';
import { anthropicUsage } from '../providers/anthropic-response';
import { adapterFor } from '../providers/registry';
import type { StreamTranslator } from '../providers/types';
import type { Candidate } from '../routing/catalog';
import { relayEvents } from '../upstream/event-relay';
import { continueMessages } from './continuation';
import { MessagesSplice } from './continuation-splice';
import { anthropicErrors, anthropicErrorType } from './errors';
import type { ContinuationSpec, InboundSpec, JsonAnswer, RelayArgs, StreamResult } from './types';
import { validateRequest, ValidRequest } from './validate';

/** The provider type that speaks this wire format natively. */
export const NATIVE = 'anthropic';

/** x-api-key (Anthropic's SDKs) or the Authorization header, as the gateway's authenticator reads it. */
export function anthropicAuthorization(headers: IncomingHttpHeaders): string | undefined {
  const key = headers['x-api-key'];
  return typeof key === 'string' && key ? `Bearer ${key}` : headers.authorization;
}

export function validateMessages(body: unknown): ValidRequest {
  const valid = validateRequest('chat', body);
  if (valid.maxTokens === undefined) throw badRequest('Missing required parameter: "max_tokens".', 'missing_required_parameter', 'max_tokens');
  return valid;
}

/** The body each candidate gets: native, or as an OpenAI chat request (translated on for other wire formats). */
function messagesBodies(valid: ValidRequest): (c: Candidate) => Buffer {
  let chat: Record<string, unknown> | undefined;
  return (c) => {
    if (c.provider.type === NATIVE) return Buffer.from(JSON.stringify({ ...valid.body, model: c.upstreamModel }), 'utf8');
    chat ??= messagesToChat(valid.body);
    return Buffer.from(chatBody(chat, c, valid.stream), 'utf8');
  };
}

/** The request as OpenAI chat for a candidate of another type: translated on for other wire formats. */
function chatBody(chat: Record<string, unknown>, c: Candidate, stream: boolean): string {
  const translation = adapterFor(c.provider.type).translation;
  return translation ? translation.requestBody('chat', chat, c.upstreamModel, c.provider, stream) : JSON.stringify({ ...chat, model: c.upstreamModel });
}

/** Anthropic's `error` stream event (the SDKs raise it as an APIError). */
function errorEvent(message: string, status = 500): string {
  return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: anthropicErrorType(status), message } })}\n\n`;
}

function answerMessage({ raw, parsed }: { raw: Buffer; parsed: Record<string, unknown> }, c: Candidate, _valid: ValidRequest, rewrite?: (text: string) => string): JsonAnswer {
  const native = c.provider.type === NATIVE;
  const message = native ? parsed : chatToMessage(parsed);
  const content = Array.isArray(message.content) ? (message.content as Array<{ text?: unknown }>) : [];
  const body = native ? raw.toString('utf8') : JSON.stringify(message);
  return {
    body: rewrite ? rewrite(body) : body,
    usage: native ? anthropicUsage(parsed.usage) : chatUsage(parsed.usage),
    outputText: () => content.map((b) => (typeof b?.text === 'string' ? b.text : '')).join(''),
    model: message.model,
  };
}

/** The Anthropic events of a candidate's stream: relayed as they are (native), or translated from chat chunks. */
const observerFor = (c: Candidate): StreamTranslator & Observed => (c.provider.type === NATIVE ? new MessagesStreamObserver() : new ChatToMessagesStream());

async function relayThrough(args: RelayArgs, observer: StreamTranslator & Observed, hold: boolean, prior?: StreamResult): Promise<StreamResult> {
  const out = await relayEvents(args.handle, args.res, observer, (message) => errorEvent(message), args.rewrite, hold);
  const end = out.clientGone ? 'client_gone' : (out.interrupted ?? 'completed');
  return {
    end,
    usage: observer.usage,
    usageFinal: observer.usageFinal,
    model: observer.model,
    outputText: observer.outputText,
    sentText: (prior?.sentText ?? '') + observer.outputText,
    toolCalls: (prior?.toolCalls ?? false) || observer.toolCalls,
    dropped: observer.dropped,
    blockIndex: observer.blockIndex,
    textOpen: observer.textOpen,
  };
}

const relayMessages = (a: RelayArgs, hold: boolean) => relayThrough(a, observerFor(a.candidate), hold);

/** A continuation's events join the message the client has (no second message_start, the open text block going on). */
const messagesContinuation: ContinuationSpec = {
  request: continueMessages,
  relay: (a, prior, hold) => relayThrough(a, new MessagesSplice(observerFor(a.candidate), { blockIndex: prior.blockIndex ?? -1, textOpen: prior.textOpen === true }), hold, prior),
  end(res) {
    if (!res.writableEnded) res.end(errorEvent('The provider stream was interrupted after it started; the response is incomplete.'));
  },
};

export const MESSAGES_INBOUND: InboundSpec = {
  name: 'messages',
  path: '/v1/messages',
  endpoint: 'chat',
  nativeType: NATIVE,
  authorization: anthropicAuthorization,
  validate: validateMessages,
  bodyFor: messagesBodies,
  answer: answerMessage,
  relayStream: relayMessages,
  continuation: messagesContinuation,
  errors: anthropicErrors,
  cacheable: false,
  storesResponses: false,
};

/**
 * `type: bedrock`: Amazon Bedrock's Converse and ConverseStream APIs
 * (POST {base_url}/model/{modelId}/converse[-stream]), each call signed with SigV4
 * (service bedrock, providers[].region) with AWS credentials found as the AWS SDKs find them
 * (bedrock-credentials.ts: the environment, then IRSA, EKS Pod Identity, container credentials ...).
 */
import { ProviderConfig, providerOfType } from '../config/schema';
import { converseRequest } from './bedrock-request';
import { bedrockUsage, ConverseStreamTranslator, converseToChat, EventStreamTranslation } from './bedrock-response';
import { defaultStatusClass } from './common';
import { baseOf } from './openai';
import { awsCredentials } from './bedrock-credentials';
import { awsModules } from './aws-modules';
import { ProviderAdapter, RequestTranslationError, Target, UpstreamErrorBody } from './types';
import { PROVIDER_FACTS } from '../core/provider-types';

/** Bedrock's error body: {"message": "..."} (or "Message"); the exception name is in x-amzn-ErrorType, not kept. */
export function bedrockErrorBody(text: string): UpstreamErrorBody | undefined {
  try {
    const e = JSON.parse(text) as { message?: unknown; Message?: unknown };
    const message = typeof e?.message === 'string' ? e.message : typeof e?.Message === 'string' ? e.Message : undefined;
    return message === undefined ? undefined : { message, type: 'invalid_request_error', code: 'bedrock_rejected', param: null };
  } catch {
    return undefined;
  }
}

/** SigV4 headers for one call; credentials come from `env` or the standard AWS chain at each call (rotations are picked up). */
async function sign(provider: ProviderConfig, t: Target, body: Buffer, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const credentials = await awsCredentials(env);
  const { SignatureV4, Sha256 } = awsModules();
  const signer = new SignatureV4({ service: 'bedrock', region: providerOfType(provider, 'bedrock').region, sha256: Sha256, credentials });
  const url = new URL(t.origin);
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: t.path,
    headers: { ...t.headers, host: url.host },
    body,
  });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k !== 'host' && !(k in t.headers)) out[k] = String(v);
  return out;
}

export const bedrockAdapter: ProviderAdapter = {
  type: 'bedrock',
  ...PROVIDER_FACTS.bedrock,
  target(provider: ProviderConfig, _endpoint, upstreamModel: string, stream: boolean): Target {
    const { origin, base } = baseOf(provider);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: stream ? 'application/vnd.amazon.eventstream' : 'application/json' };
    return { origin, path: `${base}/model/${encodeURIComponent(upstreamModel)}/${stream ? 'converse-stream' : 'converse'}`, headers };
  },
  targetForPath() {
    throw new Error('bedrock providers serve no pass-through paths');
  },
  sign,
  prepare: () => void awsModules(),
  classifyStatus: defaultStatusClass,
  errorBody: bedrockErrorBody,
  translation: {
    requestBody(endpoint, body) {
      if (endpoint !== 'chat') throw new RequestTranslationError(`The ${endpoint} endpoint is not served by bedrock providers.`);
      return JSON.stringify(converseRequest(body));
    },
    // Converse answers do not name the model: the name sent is put in (mapped to the client's like any provider's).
    responseJson: (parsed, nowSec, model) => converseToChat(parsed, nowSec, model),
    streamTranslator: (nowSec, model) => new EventStreamTranslation(new ConverseStreamTranslator(nowSec, model)),
    streamContentType: 'application/vnd.amazon.eventstream',
    usage: (parsed) => bedrockUsage(parsed.usage as Record<string, unknown> | undefined),
  },
};

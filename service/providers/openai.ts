/** `type: openai`: the OpenAI wire format, bodies and streams relayed byte for byte. */
import { ProviderConfig, providerOfType } from '../config/schema';
import { Endpoint, ENDPOINTS } from '../core/endpoints';
import { defaultStatusClass, openAiErrorBody } from './common';
import type { ProviderAdapter, Target } from './types';
import { PROVIDER_FACTS } from '../core/provider-types';

/** The base URL's origin and its path without a trailing slash. */
export function baseOf(provider: ProviderConfig): { origin: string; base: string } {
  const url = new URL(provider.base_url);
  return { origin: url.origin, base: url.pathname.replace(/\/+$/, '') };
}

export const openaiAdapter: ProviderAdapter = {
  type: 'openai',
  ...PROVIDER_FACTS.openai,
  target(config: ProviderConfig, endpoint: Endpoint): Target {
    const provider = providerOfType(config, 'openai');
    const { origin, base } = baseOf(provider);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (provider.api_key) headers.authorization = `Bearer ${provider.api_key}`;
    return { origin, path: `${base}${ENDPOINTS[endpoint].upstreamPath}`, headers };
  },
  targetForPath(config, subpath, search) {
    const provider = providerOfType(config, 'openai');
    const { origin, base } = baseOf(provider);
    const headers: Record<string, string> = {};
    if (provider.api_key) headers.authorization = `Bearer ${provider.api_key}`;
    return { origin, path: `${base}${subpath}${search}`, headers };
  },
  classifyStatus: defaultStatusClass,
  errorBody: openAiErrorBody,
};

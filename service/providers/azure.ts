/** `type: azure`: Azure OpenAI, the OpenAI wire format per deployment (api-key header), relayed byte for byte. */
import { ProviderConfig, providerOfType } from '../config/schema';
import { Endpoint, ENDPOINTS } from '../core/endpoints';
import { defaultStatusClass, openAiErrorBody } from './common';
import { baseOf } from './openai';
import type { ProviderAdapter, Target } from './types';
import { PROVIDER_FACTS } from '../core/provider-types';

export const azureAdapter: ProviderAdapter = {
  type: 'azure',
  ...PROVIDER_FACTS.azure,
  target(config: ProviderConfig, endpoint: Endpoint, upstreamModel: string): Target {
    const provider = providerOfType(config, 'azure');
    const { origin, base } = baseOf(provider);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (provider.api_key) headers['api-key'] = provider.api_key;
    // Azure serves the Responses API only on its v1 surface, per resource, with the deployment as the body's
    // model and no api-version; the other endpoints are per deployment with an api-version.
    if (endpoint === 'responses') return { origin, path: `${base}/openai/v1${ENDPOINTS[endpoint].upstreamPath}`, headers };
    const q = new URLSearchParams({ 'api-version': provider.api_version });
    return { origin, path: `${base}/openai/deployments/${encodeURIComponent(upstreamModel)}${ENDPOINTS[endpoint].upstreamPath}?${q}`, headers };
  },
  targetForPath(config, subpath, search) {
    // Stored responses live on Azure's v1 surface (no api-version), like POST /responses.
    const provider = providerOfType(config, 'azure');
    const { origin, base } = baseOf(provider);
    const headers: Record<string, string> = {};
    if (provider.api_key) headers['api-key'] = provider.api_key;
    return { origin, path: `${base}/openai/v1${subpath}${search}`, headers };
  },
  classifyStatus: defaultStatusClass,
  errorBody: openAiErrorBody,
};

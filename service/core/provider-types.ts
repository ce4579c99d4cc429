/**
 * The provider types and the per-type facts the config schema checks against: a leaf table
 * that the schema and the adapters both read, so the schema never imports an adapter (and
 * the adapters, which take the schema's ProviderConfig type, form no cycle with it).
 * A new type is one entry here, its adapter module, its registry entry and its config fields.
 */
import type { Endpoint } from './endpoints';

export const PROVIDER_TYPES = ['openai', 'azure', 'anthropic', 'bedrock'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

export interface ProviderTypeFacts {
  /** Endpoints a provider of this type serves when it declares none. */
  readonly defaultEndpoints: readonly Endpoint[];
  /** Endpoints it can serve at all (providers[].endpoints must stay within them). */
  readonly supportedEndpoints: readonly Endpoint[];
  /** Whether pass-through and stored-object paths can go to it. */
  readonly forwardsPaths: boolean;
}

export const PROVIDER_FACTS: Readonly<Record<ProviderType, ProviderTypeFacts>> = {
  openai: { defaultEndpoints: ['chat', 'completion', 'embedding', 'responses'], supportedEndpoints: ['chat', 'completion', 'embedding', 'responses'], forwardsPaths: true },
  // An Azure deployment serves the Responses API only where the resource offers it: opt in with providers[].endpoints.
  azure: { defaultEndpoints: ['chat', 'completion', 'embedding'], supportedEndpoints: ['chat', 'completion', 'embedding', 'responses'], forwardsPaths: true },
  anthropic: { defaultEndpoints: ['chat'], supportedEndpoints: ['chat'], forwardsPaths: false },
  bedrock: { defaultEndpoints: ['chat'], supportedEndpoints: ['chat'], forwardsPaths: false },
};

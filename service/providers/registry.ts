/**
 * The adapter of each provider type (the types and their facts are in core/provider-types.ts).
 * A new type is one adapter module, one entry here, one in core/provider-types.ts, and its
 * fields in the config schema.
 */
import { anthropicAdapter } from './anthropic';
import { azureAdapter } from './azure';
import { bedrockAdapter } from './bedrock';
import { openaiAdapter } from './openai';
import type { ProviderAdapter } from './types';
import type { ProviderType } from '../core/provider-types';

const ADAPTERS: Readonly<Record<ProviderType, ProviderAdapter>> = {
  openai: openaiAdapter,
  azure: azureAdapter,
  anthropic: anthropicAdapter,
  bedrock: bedrockAdapter,
};

export const adapterFor = (type: ProviderType): ProviderAdapter => ADAPTERS[type];

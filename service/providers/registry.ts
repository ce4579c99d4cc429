/**
 * The provider types the gateway speaks. A new type is one adapter module, one entry here,
 * and its fields in the config schema.
 */
import { anthropicAdapter } from './anthropic';
import { azureAdapter } from './azure';
import { bedrockAdapter } from './bedrock';
import { openaiAdapter } from './openai';
import type { ProviderAdapter } from './types';

export const PROVIDER_TYPES = ['openai', 'azure', 'anthropic', 'bedrock'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

const ADAPTERS: Readonly<Record<ProviderType, ProviderAdapter>> = {
  openai: openaiAdapter,
  azure: azureAdapter,
  anthropic: anthropicAdapter,
  bedrock: bedrockAdapter,
};

export const adapterFor = (type: ProviderType): ProviderAdapter => ADAPTERS[type];

/**
 * The provider types the gateway speaks. A new type is one adapter module, one entry here,
 * and its fields in the config schema.
 */
import { azureAdapter } from './azure';
import { openaiAdapter } from './openai';
import type { ProviderAdapter } from './types';

export const PROVIDER_TYPES = ['openai', 'azure'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

const ADAPTERS: Readonly<Record<ProviderType, ProviderAdapter>> = {
  openai: openaiAdapter,
  azure: azureAdapter,
};

export const adapterFor = (type: ProviderType): ProviderAdapter => ADAPTERS[type];

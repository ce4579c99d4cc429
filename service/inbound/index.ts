/** Every inbound API the gateway serves through its one pipeline. */
import { MESSAGES_INBOUND } from './messages';
import { OPENAI_INBOUND } from './openai';
import type { InboundSpec } from './types';

export const INBOUND: readonly InboundSpec[] = [...OPENAI_INBOUND, MESSAGES_INBOUND];

/** zod pieces the stack schemas share (config.ts, egressSchema.ts); no imports from infra. */
import { z } from 'zod';
import { dnsLabel } from '../service/config/schema';

export const k8sName = dnsLabel;
export const cidr = z.cidrv4({ error: 'must be an IPv4 CIDR like 10.0.0.0/16' });
export const labels = z.record(z.string(), z.string());
export const port = z.number().int().min(1).max(65535);

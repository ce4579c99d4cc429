/**
 * Request bodies of the admin API, validated with zod into OpenAI-shaped 400s.
 */
import { z } from 'zod';
import { badRequest } from '../core/errors';
import { budgetSchema, dnsLabel, rateLimitSchema } from '../config/schema';

const budget = budgetSchema.refine((b) => b.daily_usd !== undefined || b.monthly_usd !== undefined, { message: 'set daily_usd and/or monthly_usd' });

export const createKeyBody = z
  .object({
    /** Readable name for logs, metrics and the ledger (default: "<team>-<random>"). */
    name: dnsLabel.optional(),
    team: dnsLabel,
    project: dnsLabel.default('default'),
    expires_at: z.iso.datetime({ offset: true }).optional(),
    models: z.array(z.string().min(1).max(256)).min(1).max(200).optional(),
    rate_limit: rateLimitSchema.optional(),
    budget: budget.optional(),
  })
  .strict();

export const rotateKeyBody = z
  .object({
    /** How long the old key keeps working (default: store.rotate_grace_seconds). */
    grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86400)
      .optional(),
  })
  .strict();

export const createTeamBody = z
  .object({
    name: dnsLabel,
    budget: budget.optional(),
    rate_limit: rateLimitSchema.optional(),
  })
  .strict();

export const patchTeamBody = z
  .object({
    budget: budget.nullable().optional(),
    rate_limit: rateLimitSchema.nullable().optional(),
  })
  .strict()
  .refine((p) => p.budget !== undefined || p.rate_limit !== undefined, { message: 'give budget and/or rate_limit (null clears one)' });

/** Parses a body or throws a 400 naming the first bad field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue.path.join('.');
  throw badRequest(`Invalid request body${path ? ` at "${path}"` : ''}: ${issue.message}.`, 'invalid_request_body', path || null);
}

/**
 * Redaction of provider error bodies before anything of them reaches a client: a provider may
 * echo the credentials it was sent (a header dump, "Incorrect API key provided: ..."), raw,
 * JSON-escaped (`\u002d` for "-") or base64-encoded (a Basic authorization header).
 *
 * JSON is decoded first (so escapes are gone), every string (keys included) is redacted, and
 * the result re-encoded: a key written with escapes can no longer slip past a text search.
 * A body that is not JSON is never relayed: the caller answers a generic error naming the
 * status (`genericProviderError`). No I/O.
 */

export const REDACTED = '[redacted]';

/** Shortest secret searched for: shorter values would redact ordinary words. */
const MIN_SECRET_LENGTH = 8;

/**
 * Base64 runs that only the secret's bytes determine, for each of the 3 alignments the secret
 * can have inside a longer encoded value (e.g. base64("user:" + key)): the first and last
 * 4-character groups may mix in neighbouring bytes, so they are left out. Standard and
 * URL-safe alphabets.
 */
function base64Cores(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const cores: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes, Buffer.alloc(3)]).toString('base64');
    const start = shift === 0 ? 0 : 4;
    const end = Math.floor((shift + bytes.length) / 3) * 4; // groups made only of secret bytes (and the prefix, for shift 0)
    const core = encoded.slice(start, end);
    if (core.length >= MIN_SECRET_LENGTH) cores.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return cores;
}

/** The forms to search for in decoded text: the secret itself and its base64 runs. */
export function secretForms(secrets: readonly (string | undefined)[]): string[] {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (!s || s.length < MIN_SECRET_LENGTH) continue;
    forms.add(s);
    for (const core of base64Cores(s)) forms.add(core);
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/** Replaces every form in a decoded string. */
export function redactText(text: string, forms: readonly string[]): string {
  let out = text;
  for (const f of forms) if (out.includes(f)) out = out.split(f).join(REDACTED);
  return out;
}

function redactValue(v: unknown, forms: readonly string[]): unknown {
  if (typeof v === 'string') return redactText(v, forms);
  if (Array.isArray(v)) return v.map((x) => redactValue(x, forms));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[redactText(k, forms)] = redactValue(x, forms);
    return out;
  }
  return v;
}

/**
 * A provider's JSON body with every secret form removed from its decoded strings, re-encoded;
 * undefined when the body is not JSON (whatever its content type said).
 */
export function redactJsonBody(text: string, secrets: readonly (string | undefined)[]): { text: string; parsed: unknown } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const forms = secretForms(secrets);
  if (!forms.length) return { text, parsed };
  const clean = redactValue(parsed, forms);
  return { text: JSON.stringify(clean), parsed: clean };
}

/** The OpenAI-shaped body that replaces a provider error body the gateway cannot decode. */
export function genericProviderError(status: number): { error: { message: string; type: string; code: string; param: null } } {
  return {
    error: {
      message: `The provider answered HTTP ${status} with a body that is not JSON; it is not relayed.`,
      type: status >= 500 ? 'upstream_error' : 'invalid_request_error',
      code: 'upstream_error',
      param: null,
    },
  };
}

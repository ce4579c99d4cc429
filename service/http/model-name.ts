/**
 * Internal model names stay internal, and the answer names the public model that served it:
 * when the serving provider's model has an `upstream_name` (an Azure deployment, an internal
 * checkpoint), every `"model": "..."` member of the answer (the JSON body, each stream chunk,
 * the `response` object inside Responses API events) carries its public name instead. An alias
 * answered by one of its targets says that target's public name (the model that answered).
 * The upstream name goes to the log line only. `routing.expose_upstream_model: true` turns
 * this off.
 *
 * Unmapped models pay nothing: no rewriter is made. The rewrite is one regex pass over the
 * text about to be written, not a parse: a `"model"` key inside a JSON string (e.g. tool
 * call arguments) is escaped (`\"model\"`) and does not match.
 */
import type { GatewayConfig } from '../config/schema';
import type { Candidate } from '../routing/catalog';

const MODEL_MEMBER = /"model"\s*:\s*"(?:[^"\\]|\\.)*"/g;

/** A function that puts the candidate's public name in every model member, or undefined when there is nothing to hide. */
export function modelRewriter(config: Pick<GatewayConfig, 'routing'>, c: Pick<Candidate, 'model' | 'upstreamModel'>): ((text: string) => string) | undefined {
  if (config.routing.expose_upstream_model || c.upstreamModel === c.model) return undefined;
  const member = `"model":${JSON.stringify(c.model)}`;
  return (text) => text.replace(MODEL_MEMBER, () => member);
}

/**
 * For answers about stored objects (GET /v1/responses/{id}), where the requested name is not
 * known: a provider's `upstream_name`s back to its public model names. Undefined when the
 * provider maps none (or the config exposes upstream names).
 */
export function publicNameRewriter(config: Pick<GatewayConfig, 'routing' | 'providers'>, providerName: string): ((text: string) => string) | undefined {
  const p = config.providers.find((x) => x.name === providerName);
  if (config.routing.expose_upstream_model || !p) return undefined;
  const names = new Map<string, string>();
  for (const m of p.models) if (m.upstream_name && m.upstream_name !== m.name && !names.has(m.upstream_name)) names.set(m.upstream_name, m.name);
  if (!names.size) return undefined;
  return (text) =>
    text.replace(MODEL_MEMBER, (member) => {
      const value = JSON.parse(member.slice(member.indexOf(':') + 1)) as string;
      const pub = names.get(value);
      return pub === undefined ? member : `"model":${JSON.stringify(pub)}`;
    });
}

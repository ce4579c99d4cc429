/**
 * Everything the program decides from stack config before it creates a resource (pure): the gateway
 * config, the canary's own config when `canary.gateway` overrides it, and the egress the providers
 * need. Any problem is a StackConfigError naming the key, so `pulumi up` and `npm run render` stop
 * before anything is created.
 */
import { PROJECT, StackConfig, StackConfigError, mergeGatewayOverrides } from './config';
import { EgressPlan, Upstream, planEgress } from './egress';
import { RenderedGatewayConfig, renderGatewayConfig } from './gatewayConfig';
import { REDIS_SERVICE } from './redis';

export interface StackPlan {
  gatewayConfig: RenderedGatewayConfig;
  /** Only while a canary runs with its own gateway overrides. */
  canaryConfig?: RenderedGatewayConfig;
  egress: EgressPlan;
}

/** The canary's config: the gateway block with `canary.gateway` merged in, checked by the gateway's own parser. */
function renderCanaryConfig(stack: StackConfig, stackName: string): RenderedGatewayConfig | undefined {
  if (!stack.canary?.gateway || stack.canary.weight === 0) return undefined;
  try {
    return renderGatewayConfig({ ...stack, gateway: mergeGatewayOverrides(stack.gateway, stack.canary.gateway) }, REDIS_SERVICE, stackName);
  } catch (err) {
    if (!(err instanceof StackConfigError)) throw err;
    const prefix = `${PROJECT}:gateway`;
    throw new StackConfigError(err.problems.map((p) => (p.startsWith(prefix) ? `${PROJECT}:canary.gateway${p.slice(prefix.length)} (merged over gateway)` : p)));
  }
}

/** Each provider URL the pods will call, named by the key it comes from. */
function upstreams(stable: RenderedGatewayConfig, canary?: RenderedGatewayConfig): Upstream[] {
  const list: Upstream[] = stable.parsed.providers.map((p, i) => ({ where: `gateway.providers[${i}]`, name: p.name, url: p.base_url }));
  canary?.parsed.providers.forEach((p, i) => {
    if (!list.some((u) => u.name === p.name && u.url === p.base_url)) list.push({ where: `canary.gateway.providers[${i}]`, name: p.name, url: p.base_url });
  });
  return list;
}

/** `stackName` goes into the default Redis key prefix of a managed Redis (see renderGatewayConfig). */
export function planStack(stack: StackConfig, stackName: string): StackPlan {
  const gatewayConfig = renderGatewayConfig(stack, REDIS_SERVICE, stackName);
  const canaryConfig = renderCanaryConfig(stack, stackName);
  const egress = planEgress(upstreams(gatewayConfig, canaryConfig), stack.egress);
  if (egress.problems.length) throw new StackConfigError(egress.problems);
  return { gatewayConfig, canaryConfig, egress };
}

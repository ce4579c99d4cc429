/**
 * A canary release: a second gateway Deployment (and Service) running the canary image (and its own
 * config when `canary.gateway` overrides it). On Gateway API the HTTPRoute's weighted backendRefs
 * send `weight` percent of requests to it (route.ts); on ingress-nginx an nginx canary Ingress for
 * the same host does.
 * Raising the weight shifts traffic; weight 0 or no canary block removes both (rollback);
 * promotion is setting the main image to the canary's and removing the block.
 */
import * as pulumi from '@pulumi/pulumi';
import { APP } from './common';
import { GatewayIngress, GatewayIngressArgs } from './ingress';
import { GatewayWorkload, GatewayWorkloadArgs } from './gateway';

export interface CanaryArgs {
  image: string;
  /** 1..100 percent of requests. */
  weight: number;
  replicas: number;
  /** The stable workload's settings; the canary changes only image, track and replicas. */
  workload: Omit<GatewayWorkloadArgs, 'track' | 'image' | 'replicas' | 'autoscaling' | 'disruptionBudget'>;
  /** ingress-nginx mode only: the stable Ingress's settings, for the nginx canary Ingress. */
  ingress?: Omit<GatewayIngressArgs, 'name' | 'serviceName' | 'canaryWeight' | 'labels'>;
}

export class Canary extends pulumi.ComponentResource {
  readonly workload: GatewayWorkload;
  readonly ingress?: GatewayIngress;

  constructor(name: string, args: CanaryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:Canary', name, {}, opts);
    if (args.weight < 1 || args.weight > 100) throw new Error(`canary weight must be 1..100, got ${args.weight}`);
    this.workload = new GatewayWorkload(
      `${name}-workload`,
      // Its own PDB (maxUnavailable 1): a drain takes one canary pod at a time, never the whole canary at once.
      { ...args.workload, track: 'canary', image: args.image, replicas: args.replicas, disruptionBudget: true },
      { parent: this },
    );
    if (!args.ingress) {
      this.registerOutputs({ url: this.workload.url });
      return;
    }
    this.ingress = new GatewayIngress(
      `${name}-ingress`,
      { ...args.ingress, name: `${APP}-canary`, labels: this.workload.podLabels, serviceName: this.workload.serviceName, canaryWeight: args.weight },
      // Depending on the Deployment makes a rollback delete the Ingress (nginx stops routing) before the pods.
      { parent: this, dependsOn: [this.workload.deployment] },
    );
    this.registerOutputs({ url: this.workload.url });
  }
}

/** The namespace and the Secret holding every credential the gateway and Redis use. */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, GATEWAY_SECRET, objectLabels } from './common';
import { contentName } from './contentName';

export interface NamespaceArgs {
  name: string;
  stack: string;
  environment: string;
  /** Env var name -> value; a secret Output, so Pulumi encrypts it in state and never prints it. */
  secretEnv: pulumi.Output<Record<string, string>>;
  /** Digest of secretEnv: the Secret is named by it, so a rotation is a new Secret the pods roll onto. */
  secretChecksum: string;
  /** Production: neither `pulumi destroy` nor a rename may delete the namespace (the Redis volume lives in it). */
  protect: boolean;
}

export class GatewayNamespace extends pulumi.ComponentResource {
  readonly namespace: k8s.core.v1.Namespace;
  readonly secret: k8s.core.v1.Secret;
  /** The namespace name, resolved after the Namespace exists (children depend on it through this). */
  readonly name: pulumi.Output<string>;
  readonly secretName: pulumi.Output<string>;

  constructor(name: string, args: NamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:Namespace', name, {}, opts);
    this.namespace = new k8s.core.v1.Namespace(
      name,
      {
        metadata: {
          name: args.name,
          labels: {
            'app.kubernetes.io/part-of': APP,
            'ai-gateway/environment': args.environment,
            // Pod Security Admission: the API server itself rejects root, privileged or capability-holding pods.
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
      { parent: this, protect: args.protect, retainOnDelete: args.protect },
    );
    this.name = this.namespace.metadata.name;
    this.secret = new k8s.core.v1.Secret(
      `${name}-secrets`,
      {
        metadata: { name: contentName(GATEWAY_SECRET, args.secretChecksum), namespace: this.name, labels: objectLabels(args.stack, 'gateway') },
        type: 'Opaque',
        immutable: true,
        stringData: pulumi.secret(args.secretEnv),
      },
      { parent: this },
    );
    this.secretName = this.secret.metadata.name;
    this.registerOutputs({ name: this.name, secretName: this.secretName });
  }
}

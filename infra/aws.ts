/**
 * AWS credentials for bedrock providers in the cluster (stack key `aws`). The gateway reads them the
 * way every AWS SDK does (service/providers/bedrock-credentials.ts); the stack supplies the source:
 *   irsa          a ServiceAccount annotated `eks.amazonaws.com/role-arn`: EKS's pod identity webhook
 *                 injects AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and a projected token volume of its
 *                 own (the pod keeps automountServiceAccountToken: false); the SDK trades the token at
 *                 STS (public HTTPS, already open for bedrock-runtime).
 *   pod-identity  the ServiceAccount alone; the association is made in AWS
 *                 (`aws eks create-pod-identity-association --namespace NS --service-account ai-gateway
 *                 --role-arn ...`) and the EKS Pod Identity agent on each node serves credentials at
 *                 169.254.170.23:80 (AWS docs, "Set up the Amazon EKS Pod Identity Agent"), which the
 *                 egress policy opens.
 *   static        AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the gateway Secret (secrets
 *                 awsAccessKeyId, awsSecretAccessKey): the fallback off EKS.
 * Instance metadata is turned off (AWS_EC2_METADATA_DISABLED): the egress policy never allows 169.254.169.254.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, objectLabels } from './common';
import type { StackConfig } from './config';

type Aws = NonNullable<StackConfig['aws']>;

export const GATEWAY_SERVICE_ACCOUNT = APP;
export const IRSA_ANNOTATION = 'eks.amazonaws.com/role-arn';
export const POD_IDENTITY_AGENT = { cidr: '169.254.170.23/32', port: 80 };

/** The ServiceAccount the gateway pods run as (IRSA and Pod Identity bind the role to it); none for static keys. */
export function gatewayServiceAccount(aws: Aws | undefined, args: { namespace: pulumi.Input<string>; stack: string }, opts: pulumi.CustomResourceOptions): k8s.core.v1.ServiceAccount | undefined {
  if (!aws || aws.mode === 'static') return undefined;
  return new k8s.core.v1.ServiceAccount(
    'gateway-service-account',
    {
      metadata: {
        name: GATEWAY_SERVICE_ACCOUNT,
        namespace: args.namespace,
        labels: objectLabels(args.stack, 'gateway'),
        ...(aws.mode === 'irsa' ? { annotations: { [IRSA_ANNOTATION]: aws.roleArn } } : {}),
      },
      // The gateway never calls the Kubernetes API: no token is mounted (the AWS webhooks project their own).
      automountServiceAccountToken: false,
    },
    opts,
  );
}

/** Plain environment for the gateway container when bedrock is configured. */
export const awsEnv = (aws: Aws | undefined): Record<string, string> => (aws ? { AWS_EC2_METADATA_DISABLED: 'true' } : {});

/** The egress rule Pod Identity needs (the node-local agent); none otherwise. */
export function awsEgress(aws: Aws | undefined): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] {
  if (aws?.mode !== 'pod-identity') return [];
  return [{ to: [{ ipBlock: { cidr: POD_IDENTITY_AGENT.cidr } }], ports: [{ protocol: 'TCP', port: POD_IDENTITY_AGENT.port }] }];
}

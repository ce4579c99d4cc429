/**
 * AWS credentials for `type: bedrock`, as every AWS SDK finds them:
 *   1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) in the gateway's environment,
 *      read at each call, so a rotated Secret is picked up on the next roll without a cache to flush;
 *   2. otherwise the standard chain, `fromNodeProviderChain` of @aws-sdk/credential-providers: web
 *      identity (IRSA: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE injected by EKS's webhook), container
 *      credentials (EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI + its token file), shared
 *      config files, process credentials, and instance metadata. The chain is memoized by the SDK and
 *      refreshes temporary credentials before they expire.
 * A failure is a CredentialsError (a provider auth failure: the attempt fails over); its message names
 * the sources tried, never a credential.
 */
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { CredentialsError } from './types';

let chain: AwsCredentialIdentityProvider | undefined;

async function defaultChain(): Promise<AwsCredentialIdentityProvider> {
  // Loaded on first use: a gateway without bedrock providers never pays for the SDK's modules.
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  chain ??= fromNodeProviderChain();
  return chain;
}

/** Forget the memoized chain (tests, and after the environment that configures it changed). */
export function resetAwsCredentialChain(): void {
  chain = undefined;
}

/** Credentials for one signed call: static ones from `env` first, else the standard chain. */
export async function awsCredentials(env: NodeJS.ProcessEnv, provider: () => Promise<AwsCredentialIdentityProvider> = defaultChain): Promise<AwsCredentialIdentity> {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined };
  try {
    return await (
      await provider()
    )();
  } catch (err) {
    // The SDK keeps a failed chain's promise only until it settles; drop ours too, so the next call retries.
    resetAwsCredentialChain();
    const why = err instanceof Error ? err.name : 'error';
    throw new CredentialsError(
      `no AWS credentials: not in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), and the standard chain (web identity / IRSA, EKS Pod Identity, container, config files, instance metadata) found none (${why})`,
    );
  }
}

/**
 * Content names for ConfigMaps and Secrets: `<base>-<first 10 hex digits of the content digest>`.
 *
 * pulumi-kubernetes replaces a ConfigMap or Secret whose data changed (they are immutable unless the
 * provider sets enableConfigMapMutable / enableSecretMutable), and it deletes BEFORE it creates only
 * when the replacement keeps the same name and namespace (provider/pkg/provider/provider.go, Diff:
 * `deleteBeforeReplace := len(replaces) > 0 && !metadata.IsAutonamed(newInputs) && newInputs.GetName()
 * == old.GetName() && ...namespace equal`). A content name changes with the data, so the new object is
 * created first, the pod templates that name it roll onto it, and the old one is deleted last, after
 * the rollout: pods never start against a missing object, and old pods keep theirs while they drain.
 */
import { createHash } from 'node:crypto';

export const CONTENT_HASH_LENGTH = 10;

/** sha256 of the parts (NUL-separated, after a domain tag), hex. */
export const digest = (tag: string, ...parts: string[]) =>
  createHash('sha256')
    .update([`ai-gateway/${tag}`, ...parts].join('\0'))
    .digest('hex');

/** `<base>-<10 hex>`; stays a valid DNS subdomain name for bases up to 242 characters. */
export const contentName = (base: string, hexDigest: string) => `${base}-${hexDigest.slice(0, CONTENT_HASH_LENGTH)}`;

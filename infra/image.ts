/**
 * The gateway image: a pinned reference from stack config (`image`; production takes digests only),
 * or, when the stack sets `imageBuild`, a build of this repository's Dockerfile pushed by the stack
 * itself through @pulumi/docker-build (BuildKit). The built image is always referenced by the digest
 * the push returned, never by its tag, so every pod of a release runs the same bytes.
 *
 * Off unless `imageBuild` is set: CI usually builds and pushes, then runs
 * `pulumi config set image <repository>@sha256:...` (docs/deploy.md, "Releasing an image").
 */
import { resolve } from 'node:path';
import * as dockerbuild from '@pulumi/docker-build';
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from './config';

const ROOT = resolve(__dirname, '..');

type Build = NonNullable<StackConfig['imageBuild']>;

/** The registry host that credentials are for: `registry`, else the repository's first path segment. */
export const registryOf = (b: Pick<Build, 'registry' | 'repository'>) => b.registry ?? b.repository.split('/')[0];

/** The image the workloads run: the configured reference, or the digest of the stack's own build. */
export function gatewayImage(c: Pick<StackConfig, 'image' | 'imageBuild' | 'registryPassword'>): pulumi.Input<string> {
  const b = c.imageBuild;
  if (!b) return c.image!;
  const image = new dockerbuild.Image('gateway-image', {
    context: { location: resolve(ROOT, b.context) },
    dockerfile: { location: resolve(ROOT, b.context, b.dockerfile) },
    platforms: b.platforms as dockerbuild.Platform[],
    tags: [`${b.repository}:${b.tag}`],
    push: true,
    // A preview must not push; `pulumi up` builds and pushes once.
    buildOnPreview: false,
    registries: b.username ? [{ address: registryOf(b), username: b.username, password: pulumi.secret(c.registryPassword!) }] : [],
  });
  return pulumi.interpolate`${b.repository}@${image.digest}`;
}

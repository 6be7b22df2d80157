/**
 * What a promotion is of: `--artifact <digest>`, or `--image <registry ref>` resolved to its
 * digest before anything starts (tags never gate: from here on only the digest and the pinned
 * `host/repo@sha256:…` are used). With both, they must agree. A catalogue name (or any value
 * that is not a registry reference) stays what it was: a hint for generated evidence.
 */
import type { AppContext } from '../context';
import { badInput } from '../../lib/errors';
import { isDigest } from '../../lib/hash';
import { isCatalogueName } from '../scan/queries/promotion';
import { isRegistryReference, resolveRegistryImage } from '../scan/registry';

export interface PromotionTarget {
  artifactDigest: string;
  /** The pinned registry reference, or the catalogue name / hint given; absent when none was. */
  imageRef?: string;
  /** Set when the image was resolved through a registry: the reference as given. */
  resolvedFrom?: string;
}

export async function resolvePromotionTarget(ctx: AppContext, tenant: string, req: { artifact?: string; image?: string }): Promise<PromotionTarget> {
  const { artifact, image } = req;
  if (artifact !== undefined && !isDigest(artifact)) throw badInput(`malformed artifact digest ${JSON.stringify(artifact)}: expected sha256:<64 hex>`);
  const viaRegistry = !!image && isRegistryReference(image) && !(await isCatalogueName(ctx.db, tenant, image));
  if (!viaRegistry) {
    if (!artifact)
      throw badInput(
        image
          ? `image ${JSON.stringify(image)} is not a registry reference (host/repo:tag or host/repo@sha256:…): give --artifact <digest> with it`
          : 'artifact (sha256:…) or image (a registry reference host/repo:tag) is required',
      );
    return { artifactDigest: artifact, ...(image ? { imageRef: image } : {}) };
  }
  const r = await resolveRegistryImage(ctx, image, { upfront: true });
  if (artifact && artifact !== r.digest)
    throw badInput(`image ${image} resolves to ${r.digest}, not the artifact ${artifact}: nothing started (give one of them, or the matching pair)`);
  return { artifactDigest: r.digest, imageRef: r.pinned, resolvedFrom: image };
}

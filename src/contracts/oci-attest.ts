/**
 * HTTP contract of attestations in registries: push stella's to an image's repository (OCI
 * referrers or cosign's `.att` tag), discover what a registry holds for an image, import what
 * verifies, and list what was pushed where.
 */
import { z } from 'zod';
import { Digest, QueryBool } from './common';

const ImageRef = z.string().min(1).max(1024);
export const PUBLISH_METHODS = ['referrers', 'cosign-tag'] as const;

export const PublishBody = z.object({
  artifact: Digest,
  image: ImageRef,
  /** Plain HTTP to the image's registry (only when asked). */
  insecure: z.boolean().optional(),
  /** Default: referrers when the registry serves the OCI 1.1 referrers API, else cosign-tag. */
  method: z.enum(PUBLISH_METHODS).optional(),
});

export const PublishedItem = z.looseObject({
  evidenceId: z.string(),
  kind: z.enum(['attestation', 'sbom']),
  artifactType: z.string(),
  predicateType: z.string().nullable(),
  manifestDigest: Digest,
  tag: z.string().nullable(),
  pushed: z.boolean(),
});
export const Published = z.looseObject({
  artifact: Digest,
  repository: z.string(),
  method: z.enum(PUBLISH_METHODS),
  items: z.array(PublishedItem),
});

export const DiscoverQuery = z.looseObject({ image: ImageRef, insecure: QueryBool.optional() });
export const ImportBody = z.object({ image: ImageRef, insecure: z.boolean().optional() });

export const FoundDocument = z.looseObject({
  source: z.enum(['referrer', 'cosign-tag']),
  manifestDigest: z.string(),
  layerDigest: z.string(),
  format: z.enum(['dsse', 'sigstore-bundle', 'cyclonedx', 'other']),
  predicateType: z.string().nullable(),
  status: z.enum(['verified', 'failed', 'unsigned', 'unsupported']),
  signer: z.string().nullable(),
  reason: z.string().nullable(),
});
export type FoundDocument = z.infer<typeof FoundDocument>;
export const Discovery = z.looseObject({
  image: z.string(),
  repository: z.string(),
  digest: Digest,
  items: z.array(FoundDocument),
});
export const RegistryImport = Discovery.extend({
  items: z.array(FoundDocument.extend({ evidenceId: z.string().nullable(), created: z.boolean() })),
  imported: z.number().int(),
  failed: z.number().int(),
});

export const PublicationsQuery = z.looseObject({ artifact: Digest });
export const PublicationList = z.looseObject({
  items: z.array(
    z.looseObject({
      artifact: Digest,
      repository: z.string(),
      method: z.string(),
      evidenceId: z.string(),
      artifactType: z.string(),
      manifestDigest: z.string(),
      tag: z.string().nullable(),
      actor: z.string(),
      pushedAt: z.string(),
    }),
  ),
});

/** Publishing on promotion (opt-in per environment): the tenant's `registry.publish` setting. */
export const PublishConfigBody = z.object({ environments: z.array(z.string()).max(64), insecure: z.boolean().default(false) });
export const PublishConfigView = z.looseObject({ environments: z.array(z.string()), insecure: z.boolean() });

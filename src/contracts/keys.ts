/** HTTP contract of the key store and RootPacks: list/generate/rotate keys, show/import trust. */
import { z } from 'zod';

export const KeyAlg = z.enum(['ES256', 'EdDSA']);
export const KeyPurpose = z.enum(['signing', 'api-token', 'checkpoint']);

// Complete (non-loose) objects: every field of the key store's records is listed.
export const KeyRecord = z.object({
  kid: z.string(),
  alg: KeyAlg,
  purpose: z.string(),
  createdAt: z.string(),
  notBefore: z.string(),
  notAfter: z.string().nullable(),
  status: z.string(),
  publicJwk: z.looseObject({}),
});
export type KeyRecord = z.infer<typeof KeyRecord>;

export const KeyList = z.looseObject({ items: z.array(KeyRecord) });
export const KeyBody = z.object({ alg: KeyAlg.optional(), purpose: KeyPurpose.optional() }).nullish();
export const RotatedKeys = z.object({ active: KeyRecord, retired: z.array(KeyRecord) });

export const RootPackKey = z.object({
  kid: z.string(),
  alg: z.string(),
  publicJwk: z.looseObject({}),
  notBefore: z.string(),
  notAfter: z.string().nullable(),
  status: z.string(),
  purposes: z.array(z.string()),
});
/** A RootPack as the server holds it; its digest covers the canonical JSON, so key order does not matter. */
export const RootPack = z.object({ version: z.literal(1), createdAt: z.string(), keys: z.array(RootPackKey), digest: z.string() });
export type RootPack = z.infer<typeof RootPack>;

/** `?scope=own`: this locker's keys only (what export-rootpack writes); default: the effective trusted pack. */
export const RootPackQuery = z.looseObject({ scope: z.string().optional() });
export const RootPackImported = z.looseObject({ added: z.array(z.string()), updated: z.array(z.string()), digest: z.string() });

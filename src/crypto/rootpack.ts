import type { JWK } from 'jose';
import { z } from 'zod';
import { canonicalJson } from '../lib/canonical';
import { isDigest, sha256Digest } from '../lib/hash';
import { CryptoError } from './errors';
import { keyTrustAt, publicKeyFromJwk, assertKeyMatchesAlg, type KeyInfo, type KeyStatus, type SigAlg, type TrustResolver } from './dsse';
import { kidMatchesJwk, toPublicJwk, type KeyStore } from './keys';
import { readJsonFile, writeFileAtomic } from './fsutil';

/**
 * A RootPack is the portable trust anchor: the public keys a verifier accepts, each with
 * the window in which its signatures count. `digest` covers the canonical JSON of
 * {version, createdAt, keys}, so a pack altered in transit or on disk is refused. The
 * digest detects corruption and careless edits; authenticity of the pack itself comes
 * from how it is distributed (out of band, pinned digest).
 */

export interface RootPackKey {
  kid: string;
  alg: SigAlg;
  publicJwk: JWK;
  notBefore: string;
  notAfter: string | null;
  status: KeyStatus;
  purposes: string[];
}

export interface RootPack {
  version: 1;
  createdAt: string;
  keys: RootPackKey[];
  digest: string;
}

const isoString = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO timestamp');
// Members that would make a "public" JWK carry secret material.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

const PublicJwkSchema = z
  .looseObject({ kty: z.enum(['EC', 'OKP']), crv: z.enum(['P-256', 'Ed25519']), x: z.string().min(1), y: z.string().min(1).optional() })
  .refine((j) => PRIVATE_JWK_MEMBERS.every((m) => !(m in j)), 'publicJwk must not contain private key material');

// Strict objects: unknown members are refused rather than silently dropped, so what is
// digested is exactly what was sent.
const RootPackKeySchema = z
  .strictObject({
    kid: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    alg: z.enum(['ES256', 'EdDSA']),
    publicJwk: PublicJwkSchema,
    notBefore: isoString,
    notAfter: isoString.nullable(),
    status: z.enum(['active', 'retired', 'revoked']),
    purposes: z.array(z.string().min(1)),
  })
  .refine((k) => k.status !== 'retired' || k.notAfter !== null, 'a retired key must have notAfter');

const RootPackSchema = z.strictObject({
  version: z.literal(1),
  createdAt: isoString,
  keys: z.array(RootPackKeySchema),
  digest: z.string().refine(isDigest, 'digest must be sha256:<hex>'),
});

export function rootPackDigest(pack: Pick<RootPack, 'version' | 'createdAt' | 'keys'>): string {
  return sha256Digest(canonicalJson({ version: pack.version, createdAt: pack.createdAt, keys: pack.keys }));
}

function seal(createdAt: string, keys: RootPackKey[]): RootPack {
  const sorted = [...keys].sort((a, b) => (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
  const body = { version: 1 as const, createdAt, keys: sorted };
  return { ...body, digest: rootPackDigest(body) };
}

/** Public half of every key in the store, with its window. Never includes private material. */
export async function exportRootPack(keystore: KeyStore, opts: { now?: Date } = {}): Promise<RootPack> {
  const records = await keystore.list();
  const keys: RootPackKey[] = records.map((r) => ({
    kid: r.kid,
    alg: r.alg,
    publicJwk: toPublicJwk(r.publicJwk, r.alg, r.kid),
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    status: r.status,
    purposes: [r.purpose],
  }));
  return seal((opts.now ?? new Date()).toISOString(), keys);
}

/**
 * Parse and validate an untrusted RootPack (JSON text, bytes, or parsed value).
 * BAD_INPUT on schema problems or inconsistent keys; INTEGRITY when the digest does not
 * match the content.
 */
export async function loadRootPack(json: string | Uint8Array | unknown): Promise<RootPack> {
  let raw: unknown = json;
  if (typeof json === 'string' || json instanceof Uint8Array) {
    try {
      raw = JSON.parse(typeof json === 'string' ? json : Buffer.from(json).toString('utf8'));
    } catch {
      throw new CryptoError('MALFORMED_ROOTPACK', 'root pack is not valid JSON');
    }
  }
  const r = RootPackSchema.safeParse(raw);
  if (!r.success) {
    throw new CryptoError('MALFORMED_ROOTPACK', 'root pack is malformed', { issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  const pack = r.data as RootPack;
  // Check the digest over exactly what was received, before any normalisation.
  const expected = rootPackDigest(pack);
  if (expected !== pack.digest) throw new CryptoError('ROOTPACK_DIGEST_MISMATCH', 'root pack digest mismatch', { expected, actual: pack.digest });

  const seen = new Set<string>();
  for (const k of pack.keys) {
    if (seen.has(k.kid)) throw new CryptoError('MALFORMED_ROOTPACK', `root pack lists key ${k.kid} twice`, { kid: k.kid });
    seen.add(k.kid);
    // kid must be the thumbprint, so a pack cannot relabel someone else's key under a trusted kid.
    if (!(await kidMatchesJwk(k.kid, k.publicJwk)))
      throw new CryptoError('MALFORMED_ROOTPACK', `root pack key ${k.kid} is not the thumbprint of its publicJwk`, { kid: k.kid });
    try {
      assertKeyMatchesAlg(k.alg, publicKeyFromJwk(k.publicJwk));
    } catch {
      throw new CryptoError('MALFORMED_ROOTPACK', `root pack key ${k.kid} does not match alg ${k.alg}`, { kid: k.kid });
    }
  }
  return pack;
}

const STATUS_RANK: Record<KeyStatus, number> = { active: 0, retired: 1, revoked: 2 };

function laterOf(a: string, b: string): string {
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

function earlierOf(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(a) <= Date.parse(b) ? a : b;
}

/**
 * Merge an incoming pack into an existing one (either may be absent/empty).
 * New kids are added. For a kid already known, trust can only narrow: status escalates
 * (active < retired < revoked), notBefore takes the later value and notAfter the earlier,
 * so replaying an old pack can never un-retire or un-revoke a key. Purposes are unioned
 * (they label what a key is for; the window is what gates trust). The same kid with a
 * different key or alg is a CONFLICT.
 */
export async function importRootPack(
  base: RootPack | undefined,
  incoming: RootPack | string | Uint8Array | unknown,
  opts: { now?: Date } = {},
): Promise<{ pack: RootPack; added: string[]; updated: string[] }> {
  const inc = await loadRootPack(incoming);
  const current = base ? await loadRootPack(base) : undefined;
  const byKid = new Map<string, RootPackKey>((current?.keys ?? []).map((k) => [k.kid, k]));
  const added: string[] = [];
  const updated: string[] = [];
  for (const k of inc.keys) {
    const old = byKid.get(k.kid);
    if (!old) {
      byKid.set(k.kid, k);
      added.push(k.kid);
      continue;
    }
    if (old.alg !== k.alg || canonicalJson(keyMaterial(old.publicJwk)) !== canonicalJson(keyMaterial(k.publicJwk))) {
      throw new CryptoError('KEY_CONFLICT', `key ${k.kid} differs between root packs`, { kid: k.kid });
    }
    const merged: RootPackKey = {
      ...old,
      status: STATUS_RANK[k.status] > STATUS_RANK[old.status] ? k.status : old.status,
      notBefore: laterOf(old.notBefore, k.notBefore),
      notAfter: earlierOf(old.notAfter, k.notAfter),
      purposes: [...new Set([...old.purposes, ...k.purposes])].sort(),
    };
    if (canonicalJson(merged) !== canonicalJson(old)) {
      byKid.set(k.kid, merged);
      updated.push(k.kid);
    }
  }
  return { pack: seal((opts.now ?? new Date()).toISOString(), [...byKid.values()]), added, updated };
}

function keyMaterial(j: JWK): Record<string, unknown> {
  return { kty: j.kty, crv: j.crv, x: j.x, y: j.y };
}

export interface TrustDecision {
  trusted: boolean;
  reason: string;
  key?: RootPackKey;
}

/**
 * Would a signature by `kid` made at `at` be trusted? A key retired later still covers
 * signatures inside [notBefore, notAfter]; an unknown or revoked key never does.
 * `purpose`, when given, additionally requires the key to be labelled for it.
 */
export function trustAt(rootpack: RootPack, kid: string, at: Date, purpose?: string): TrustDecision {
  const key = rootpack.keys.find((k) => k.kid === kid);
  if (!key) return { trusted: false, reason: 'unknown key' };
  if (purpose !== undefined && !key.purposes.includes(purpose)) return { trusted: false, reason: `key not trusted for purpose ${purpose}`, key };
  return { ...keyTrustAt(key, at), key };
}

/**
 * Adapt a RootPack to dsse.verifyEnvelope's trust callback. The window is evaluated by
 * verifyEnvelope at its `at`, with the same rules as trustAt. With `purpose`, keys not
 * labelled for it are treated as unknown.
 */
export function rootPackResolver(rootpack: RootPack, opts: { purpose?: string } = {}): TrustResolver {
  const byKid = new Map(rootpack.keys.map((k) => [k.kid, k]));
  const usable = (k: RootPackKey) => opts.purpose === undefined || k.purposes.includes(opts.purpose);
  const info = (k: RootPackKey): KeyInfo => ({ alg: k.alg, publicJwk: k.publicJwk, notBefore: k.notBefore, notAfter: k.notAfter, status: k.status });
  const resolve = (keyid: string): KeyInfo | undefined => {
    const k = byKid.get(keyid);
    return k && usable(k) ? info(k) : undefined;
  };
  // Signatures without a key id (cosign's) are tried against the pack's unrevoked keys.
  return Object.assign(resolve, {
    candidates: () => rootpack.keys.filter((k) => usable(k) && k.status !== 'revoked').map((k) => [k.kid, info(k)] as const),
  });
}

/**
 * JWKS for token verification: keys that are not revoked. Windows are not applied here:
 * tokens carry their own short exp, checked by verifyToken.
 */
export function rootPackJwks(rootpack: RootPack): { keys: JWK[] } {
  return { keys: rootpack.keys.filter((k) => k.status !== 'revoked').map((k) => toPublicJwk(k.publicJwk, k.alg, k.kid)) };
}

export async function readRootPackFile(path: string): Promise<RootPack> {
  let raw: unknown;
  try {
    raw = await readJsonFile(path);
  } catch (err) {
    if (err instanceof SyntaxError) throw new CryptoError('MALFORMED_ROOTPACK', `root pack ${path} is not valid JSON`);
    throw err;
  }
  return loadRootPack(raw);
}

/** Public data, so 0644; written atomically like the key files. */
export async function writeRootPackFile(path: string, pack: RootPack): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(pack, null, 2)}\n`, 0o644);
}

import { createPrivateKey, type KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { z } from 'zod';
import { CryptoError } from './errors';
import { assertKeyMatchesAlg, rawSign, SIG_ALGS, type SigAlg, type Signer } from './dsse';
import { writeFileAtomic } from './fsutil';

/**
 * File-based signing key store. Layout: <dir>/keys/<kid>.json, one private JWK plus
 * metadata per file, mode 0600, directory 0700. Keys are never deleted: a retired key
 * stays listed so signatures made inside its window keep verifying.
 *
 * Mutations take <dir>/.lock (O_EXCL lock file holding the owner's pid) so two local
 * processes cannot rotate at once. Retired keys keep their private half on disk only
 * because deleting it is an operator decision; signer() refuses to sign with them.
 */

export type KeyStoreStatus = 'active' | 'retired';

export const DEFAULT_PURPOSE = 'signing';

/** Public metadata of a stored key (never contains private material). */
export interface KeyRecord {
  /** RFC 7638 SHA-256 JWK thumbprint of the public key, base64url. */
  kid: string;
  alg: SigAlg;
  purpose: string;
  createdAt: string;
  notBefore: string;
  notAfter: string | null;
  status: KeyStoreStatus;
  publicJwk: JWK;
}

/** A DSSE Signer that also exposes the private key for jose (SignJWT/CompactSign accept a KeyObject). */
export interface KeySigner extends Signer {
  readonly record: KeyRecord;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
}

export interface KeyStoreOptions {
  /** Clock override, for tests and deterministic tooling. */
  now?: () => Date;
  /** How long to wait for another process's lock before failing. */
  lockTimeoutMs?: number;
}

const KID_RE = /^[A-Za-z0-9_-]{43}$/;
const isoString = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO timestamp');

const StoredKeySchema = z.object({
  version: z.literal(1),
  kid: z.string().regex(KID_RE),
  alg: z.enum(['ES256', 'EdDSA']),
  purpose: z.string().min(1),
  createdAt: isoString,
  notBefore: isoString,
  notAfter: isoString.nullable(),
  status: z.enum(['active', 'retired']),
  privateJwk: z.looseObject({ kty: z.string(), d: z.string() }),
});
type StoredKey = z.infer<typeof StoredKeySchema>;

/** Only the public members that define the key, so a private JWK never leaks through a "public" path. */
export function toPublicJwk(jwk: JWK, alg: SigAlg, kid: string): JWK {
  const out: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
  if (jwk.y !== undefined) out.y = jwk.y;
  return { ...out, kid, alg, use: 'sig' };
}

export class KeyStore {
  private readonly keysDir: string;
  private readonly now: () => Date;
  private readonly lockTimeoutMs: number;
  /**
   * The parsed key files, valid while the keys directory's mtime is unchanged: every change is an
   * atomic rename into it (see write()), which updates that mtime, also when another process
   * rotates. Signing and proof checks otherwise re-read and re-parse every key file per call.
   */
  private cache: { mtimeNs: bigint; keys: StoredKey[] } | undefined;
  /** Imported private keys, per parsed key file (a new parse means a new import). */
  private readonly signers = new WeakMap<StoredKey, KeySigner>();

  private constructor(
    readonly dir: string,
    opts: KeyStoreOptions,
  ) {
    this.keysDir = join(dir, 'keys');
    this.now = opts.now ?? (() => new Date());
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
  }

  /** Open (creating if needed) a key store directory. */
  static async open(dir: string, opts: KeyStoreOptions = {}): Promise<KeyStore> {
    const ks = new KeyStore(dir, opts);
    await mkdir(ks.keysDir, { recursive: true, mode: 0o700 });
    // mkdir's mode is umask-filtered and ignored for pre-existing dirs; tighten explicitly.
    await chmod(dir, 0o700);
    await chmod(ks.keysDir, 0o700);
    return ks;
  }

  /** Create a new active key. Does not retire anything; see rotate(). */
  async generate(opts: { alg: SigAlg; purpose?: string }): Promise<KeyRecord> {
    return this.withLock(() => this.generateUnlocked(opts.alg, opts.purpose ?? DEFAULT_PURPOSE, this.now()));
  }

  /** All keys, oldest first. Fails loudly on a corrupt key file rather than silently skipping it. */
  async list(): Promise<KeyRecord[]> {
    return (await this.loadAll()).map(toRecord);
  }

  /** The key new signatures should use: the newest active key (optionally of one purpose). */
  async active(purpose?: string): Promise<KeyRecord> {
    const k = pickActive(await this.loadAll(), purpose);
    if (!k) throw new CryptoError('NO_ACTIVE_KEY', purpose ? `no active key for purpose ${purpose}` : 'no active signing key');
    return toRecord(k);
  }

  /**
   * Generate a new active key and retire the previously active key(s) of the same purpose
   * with notAfter = now. The new key is written first so a crash in between leaves two
   * active keys (harmless: active() picks the newest) rather than none.
   */
  async rotate(opts: { alg?: SigAlg; purpose?: string } = {}): Promise<{ active: KeyRecord; retired: KeyRecord[] }> {
    return this.withLock(async () => {
      const all = await this.loadAll();
      const current = pickActive(all, opts.purpose);
      const purpose = opts.purpose ?? current?.purpose ?? DEFAULT_PURPOSE;
      const alg = opts.alg ?? current?.alg ?? 'ES256';
      const now = this.now();
      const fresh = await this.generateUnlocked(alg, purpose, now);
      const retired: KeyRecord[] = [];
      for (const k of all) {
        if (k.status !== 'active' || k.purpose !== purpose || k.kid === fresh.kid) continue;
        const updated: StoredKey = { ...k, status: 'retired', notAfter: now.toISOString() };
        await this.write(updated);
        retired.push(toRecord(updated));
      }
      return { active: fresh, retired };
    });
  }

  /**
   * A signer for `kid`, or for the active key when omitted. Retired keys are refused:
   * anything they signed now would fall outside their window and never verify.
   */
  async signer(kid?: string): Promise<KeySigner> {
    let stored: StoredKey;
    if (kid === undefined) {
      const k = pickActive(await this.loadAll());
      if (!k) throw new CryptoError('NO_ACTIVE_KEY', 'no active signing key');
      stored = k;
    } else {
      if (!KID_RE.test(kid)) throw new CryptoError('MALFORMED_KID', 'malformed kid', { kid });
      stored = (await this.loadAll()).find((k) => k.kid === kid) ?? (await this.load(kid));
    }
    if (stored.status !== 'active')
      throw new CryptoError('KEY_NOT_ACTIVE', `key ${stored.kid} is ${stored.status}; sign with the active key`, { kid: stored.kid });
    let signer = this.signers.get(stored);
    if (!signer) {
      signer = makeSigner(stored);
      this.signers.set(stored, signer);
    }
    return signer;
  }

  /** JWKS of every key still listed (active and retired), for token and signature verification. */
  async publicJwks(): Promise<{ keys: JWK[] }> {
    return { keys: (await this.loadAll()).map((k) => toRecord(k).publicJwk) };
  }

  private async generateUnlocked(alg: SigAlg, purpose: string, now: Date): Promise<KeyRecord> {
    if (!SIG_ALGS.includes(alg)) throw new CryptoError('UNSUPPORTED_ALG', `unsupported key algorithm ${String(alg)}`);
    if (!purpose) throw new CryptoError('INVALID_ARGUMENT', 'key purpose must be non-empty');
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(jwk, 'sha256');
    const ts = now.toISOString();
    const stored: StoredKey = {
      version: 1,
      kid,
      alg,
      purpose,
      createdAt: ts,
      notBefore: ts,
      notAfter: null,
      status: 'active',
      privateJwk: { ...jwk, kty: jwk.kty!, d: jwk.d!, kid, alg },
    };
    await this.write(stored);
    return toRecord(stored);
  }

  private path(kid: string): string {
    return join(this.keysDir, `${kid}.json`);
  }

  private async write(k: StoredKey): Promise<void> {
    this.cache = undefined;
    await writeFileAtomic(this.path(k.kid), `${JSON.stringify(k, null, 2)}\n`, 0o600);
  }

  private async load(kid: string): Promise<StoredKey> {
    let text: string;
    try {
      text = await readFile(this.path(kid), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CryptoError('UNKNOWN_KEY', `no key ${kid}`, { kid });
      throw err;
    }
    return await parseStored(text, kid);
  }

  private async loadAll(): Promise<StoredKey[]> {
    const { mtimeNs } = await stat(this.keysDir, { bigint: true });
    if (this.cache?.mtimeNs === mtimeNs) return [...this.cache.keys];
    const keys = await this.readAll();
    this.cache = { mtimeNs, keys };
    return [...keys];
  }

  private async readAll(): Promise<StoredKey[]> {
    const names = (await readdir(this.keysDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    const keys = await Promise.all(names.map(async (n) => parseStored(await readFile(join(this.keysDir, n), 'utf8'), n.slice(0, -5))));
    return keys.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.kid.localeCompare(b.kid));
  }

  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = join(this.dir, '.lock');
    const deadline = Date.now() + this.lockTimeoutMs;
    for (;;) {
      try {
        const fh = await open(lock, 'wx', 0o600);
        await fh.writeFile(String(process.pid));
        await fh.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        await breakStaleLock(lock);
        if (Date.now() > deadline) throw new CryptoError('KEYSTORE_LOCKED', `key store locked (${lock}); remove it if no process holds it`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    try {
      return await fn();
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }
}

/** Remove a lock whose owner process no longer exists (crash leftovers). */
async function breakStaleLock(lock: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(lock, 'utf8')).trim());
  } catch {
    return; // vanished or unreadable: just retry
  }
  if (!Number.isInteger(pid) || pid <= 0) return; // being written right now; retry
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') await unlink(lock).catch(() => undefined);
  }
}

function pickActive(keys: StoredKey[], purpose?: string): StoredKey | undefined {
  const candidates = keys.filter((k) => k.status === 'active' && (purpose === undefined || k.purpose === purpose));
  candidates.sort((a, b) => b.notBefore.localeCompare(a.notBefore) || b.createdAt.localeCompare(a.createdAt) || a.kid.localeCompare(b.kid));
  return candidates[0];
}

async function parseStored(text: string, expectKid: string): Promise<StoredKey> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CryptoError('CORRUPT_KEY', `key file ${expectKid}.json is not valid JSON`, { kid: expectKid });
  }
  const r = StoredKeySchema.safeParse(raw);
  if (!r.success)
    throw new CryptoError('CORRUPT_KEY', `key file ${expectKid}.json is malformed`, { kid: expectKid, issues: r.error.issues.map((i) => i.message) });
  const k = r.data;
  if (k.kid !== expectKid) throw new CryptoError('CORRUPT_KEY', `key file ${expectKid}.json holds kid ${k.kid}`, { kid: expectKid });
  // The file must hold the key its name claims and the algorithm must fit the key type.
  const priv = makePrivateKey(k);
  const pubJwk = priv.export({ format: 'jwk' });
  if (pubJwk.x !== k.privateJwk.x || (pubJwk.y ?? undefined) !== (k.privateJwk.y ?? undefined)) {
    throw new CryptoError('CORRUPT_KEY', `key file ${expectKid}.json public part does not match its private key`, { kid: expectKid });
  }
  if (!(await kidMatchesJwk(k.kid, k.privateJwk as JWK))) throw new CryptoError('CORRUPT_KEY', `key ${k.kid} is not the thumbprint of its key`, { kid: k.kid });
  return k;
}

function makePrivateKey(k: StoredKey): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: k.privateJwk as Record<string, string>, format: 'jwk' });
  } catch (err) {
    throw new CryptoError('CORRUPT_KEY', `key ${k.kid} cannot be imported: ${(err as Error).message}`, { kid: k.kid });
  }
  try {
    assertKeyMatchesAlg(k.alg, key);
  } catch {
    throw new CryptoError('CORRUPT_KEY', `key ${k.kid} does not match its alg ${k.alg}`, { kid: k.kid });
  }
  return key;
}

function toRecord(k: StoredKey): KeyRecord {
  return {
    kid: k.kid,
    alg: k.alg,
    purpose: k.purpose,
    createdAt: k.createdAt,
    notBefore: k.notBefore,
    notAfter: k.notAfter,
    status: k.status,
    publicJwk: toPublicJwk(k.privateJwk as JWK, k.alg, k.kid),
  };
}

function makeSigner(k: StoredKey): KeySigner {
  const privateKey = makePrivateKey(k);
  const record = toRecord(k);
  return {
    keyid: k.kid,
    alg: k.alg,
    record,
    privateKey,
    publicJwk: record.publicJwk,
    sign: async (data: Uint8Array) => rawSign(k.alg, privateKey, data),
  };
}

/** Verify that a kid is the RFC 7638 thumbprint of the given public JWK. */
export async function kidMatchesJwk(kid: string, jwk: JWK): Promise<boolean> {
  try {
    return (await calculateJwkThumbprint(jwk, 'sha256')) === kid;
  } catch {
    return false;
  }
}

/** The CLI's DPoP key (RFC 9449): made once, kept in the data dir (mode 0600), and used to sign a proof per request. */
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { createDpopProof, jwkThumbprint, type DpopSigner } from '../crypto/dpop';
import { CliError, EXIT } from './exit';

export function dpopKeyPath(dataDir: string): string {
  return join(dataDir, 'dpop-key.json');
}

const loaded = new Map<string, Promise<DpopSigner>>();

async function create(file: string): Promise<DpopSigner> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ ...jwk, alg: 'ES256' }) + '\n', { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, file); // never replaces a key another process made meanwhile
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return load(file);
    throw e;
  } finally {
    unlinkSync(tmp);
  }
  return { privateKey: privateKey as CryptoKey, publicJwk: await exportJWK(publicKey), alg: 'ES256' };
}

async function load(file: string): Promise<DpopSigner> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
  } catch (e) {
    throw new CliError(`${file} is not a DPoP key (${(e as Error).message}); remove it to make a new one, then mint a new token`, EXIT.USAGE);
  }
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) throw new CliError(`${file} is not an ES256 private key`, EXIT.USAGE);
  const { d: _d, ...pub } = jwk;
  return { privateKey: (await importJWK(jwk, 'ES256')) as CryptoKey, publicJwk: pub, alg: 'ES256' };
}

/** The CLI's DPoP key in `dataDir`, created on first use. */
export function dpopKey(dataDir: string): Promise<DpopSigner> {
  const file = dpopKeyPath(dataDir);
  let p = loaded.get(file);
  if (!p) {
    p = existsSync(file) ? load(file) : create(file);
    loaded.set(file, p);
  }
  return p;
}

/** The JWK thumbprint of the CLI's DPoP key: what `cnf.jkt` of a token bound to it says. */
export async function dpopThumbprint(dataDir: string): Promise<string> {
  return jwkThumbprint((await dpopKey(dataDir)).publicJwk);
}

/** A DPoP proof for one request, by the CLI's key (with `ath` when an access token goes along). */
export async function dpopProof(dataDir: string, method: string, url: string, accessToken?: string, nonce?: string): Promise<string> {
  return createDpopProof(await dpopKey(dataDir), { method, url, ...(accessToken ? { accessToken } : {}), ...(nonce ? { nonce } : {}) });
}

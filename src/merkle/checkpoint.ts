/**
 * C2SP tlog-checkpoint as a C2SP signed note (Ed25519), and C2SP tlog-cosignature/v1 witness
 * cosignatures. Hand-written because it is the product's wire format and tiny: a note is three
 * text lines plus "— <name> <base64(keyID ‖ sig)>" lines; the key ID and message layouts follow
 * the specs byte for byte, so golang.org/x/mod/sumdb/note verifies what this signs.
 */
import crypto from 'node:crypto';
import { MerkleError } from './errors';
import { HASH_SIZE } from './hash';

/** Signature type bytes of C2SP signed-note: Ed25519 note keys (0x01) and Ed25519 cosigners (0x04). */
export const ALG_ED25519 = 0x01;
export const ALG_COSIGNATURE_V1 = 0x04;
const EM_DASH = '\u2014';

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Buffer;
  /** Extension lines after the root hash (without their newlines); stella writes none. */
  extensions: string[];
}

export interface NoteSignature {
  name: string;
  keyId: Buffer;
  /** The signature bytes after the 4-byte key ID (for cosignatures: 8-byte timestamp ‖ 64-byte signature). */
  sig: Buffer;
}

export interface SignedNote {
  /** The note text: every line before the blank line, each with its newline. */
  text: string;
  signatures: NoteSignature[];
}

/** A verifier key: key name, key ID, type byte and raw Ed25519 public key. */
export interface NoteVerifierKey {
  name: string;
  keyId: Buffer;
  alg: number;
  publicKey: Buffer;
}

const fail = (message: string): never => {
  throw new MerkleError('BAD_ANCHOR', message);
};

function checkKeyName(name: string): void {
  if (!name || /[\s+]/.test(name) || !/^[\x21-\x7e\u00a0-\uffff]+$/.test(name)) fail(`invalid note key name ${JSON.stringify(name)}`);
}

/** SHA-256(name ‖ "\n" ‖ alg ‖ publicKey)[:4], per signed-note (0x01) and tlog-cosignature (0x04). */
export function noteKeyId(name: string, alg: number, publicKey: Uint8Array): Buffer {
  return crypto
    .createHash('sha256')
    .update(Buffer.from(`${name}\n`, 'utf8'))
    .update(Buffer.from([alg]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

/** `<name>+<hex key ID>+<base64(alg ‖ key)>`: the vkey string tlog tooling (note.NewVerifier) reads. */
export function formatVkey(name: string, alg: number, publicKey: Uint8Array): string {
  checkKeyName(name);
  const id = noteKeyId(name, alg, publicKey).toString('hex');
  return `${name}+${id}+${Buffer.concat([Buffer.from([alg]), publicKey]).toString('base64')}`;
}

export function parseVkey(vkey: string): NoteVerifierKey {
  // The base64 key may itself contain '+': only the first two separate fields.
  const m = typeof vkey === 'string' ? /^([^+\s]+)\+([^+\s]+)\+(\S+)$/.exec(vkey.trim()) : null;
  if (!m) fail('a vkey is <name>+<hex key id>+<base64 key>');
  const [, name, hexId, b64] = m as unknown as [string, string, string, string];
  checkKeyName(name);
  if (!/^[0-9a-f]{8}$/.test(hexId)) fail(`vkey ${name}: key id must be 8 hex characters`);
  const raw = Buffer.from(b64, 'base64');
  if (raw.toString('base64') !== b64 || raw.length !== 33) fail(`vkey ${name}: key must be base64 of a type byte and a 32-byte Ed25519 key`);
  const alg = raw[0]!;
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) fail(`vkey ${name}: unsupported key type 0x${alg.toString(16).padStart(2, '0')}`);
  const publicKey = raw.subarray(1);
  const keyId = noteKeyId(name, alg, publicKey);
  if (keyId.toString('hex') !== hexId) fail(`vkey ${name}: key id ${hexId} does not match the key (${keyId.toString('hex')})`);
  return { name, keyId, alg, publicKey };
}

export function ed25519PublicKey(raw: Uint8Array): crypto.KeyObject {
  if (raw.length !== 32) fail('an Ed25519 public key is 32 bytes');
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** The checkpoint note text: origin, decimal size, base64 root, extension lines, each newline-terminated. */
export function formatCheckpoint(c: Checkpoint): string {
  if (!c.origin || /[\n\r]/.test(c.origin)) fail('checkpoint origin must be one non-empty line');
  if (!Number.isSafeInteger(c.size) || c.size < 0) fail('checkpoint size must be a non-negative integer');
  if (c.rootHash.length !== HASH_SIZE) fail('checkpoint root hash must be 32 bytes');
  for (const e of c.extensions) if (!e || /[\n\r]/.test(e)) fail('checkpoint extension lines must be non-empty single lines');
  return [c.origin, String(c.size), c.rootHash.toString('base64'), ...c.extensions].map((l) => `${l}\n`).join('');
}

export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) fail('checkpoint text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) fail('checkpoint needs origin, size and root hash lines');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (!origin) fail('checkpoint origin line is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine) || !Number.isSafeInteger(Number(sizeLine))) fail(`checkpoint size ${JSON.stringify(sizeLine)} is not a decimal`);
  const rootHash = Buffer.from(rootLine, 'base64');
  if (rootHash.length !== HASH_SIZE || rootHash.toString('base64') !== rootLine) fail('checkpoint root hash is not base64 of 32 bytes');
  for (const e of extensions) if (!e) fail('checkpoint has an empty extension line');
  return { origin, size: Number(sizeLine), rootHash, extensions };
}

export function formatNote(n: SignedNote): string {
  const sigs = n.signatures.map((s) => `${EM_DASH} ${s.name} ${Buffer.concat([s.keyId, s.sig]).toString('base64')}\n`).join('');
  return `${n.text}\n${sigs}`;
}

/** Split a signed note into its text and signature lines (signatures are not verified here). */
export function parseNote(note: string): SignedNote {
  if (typeof note !== 'string' || note.length > 1_000_000) fail('a signed note must be a string of at most 1 MB');
  if (/[\x00-\x09\x0b-\x1f\x7f]/.test(note)) fail('a signed note must not contain control characters other than newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) fail('a signed note is text, a blank line and signature lines');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  const signatures = lines.map((line) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) fail(`malformed signature line ${JSON.stringify(line.slice(0, 80))}`);
    const raw = Buffer.from(m![2]!, 'base64');
    if (raw.toString('base64') !== m![2] || raw.length < 5) fail(`signature of ${m![1]} is not base64 of key id and signature`);
    return { name: m![1]!, keyId: raw.subarray(0, 4), sig: raw.subarray(4) };
  });
  if (signatures.length === 0) fail('the note carries no signature');
  return { text, signatures };
}

/** Sign note text with an Ed25519 note key (type 0x01): returns the signature line's parts. */
export async function signNoteText(
  text: string,
  key: { name: string; publicKey: Uint8Array; sign: (m: Uint8Array) => Promise<Uint8Array> },
): Promise<NoteSignature> {
  checkKeyName(key.name);
  const sig = Buffer.from(await key.sign(Buffer.from(text, 'utf8')));
  if (sig.length !== 64) fail('an Ed25519 signature is 64 bytes');
  return { name: key.name, keyId: noteKeyId(key.name, ALG_ED25519, key.publicKey), sig };
}

/** The signature of `key` on the note, if one matches its name and key ID and verifies. */
export function verifyNoteSignature(n: SignedNote, key: NoteVerifierKey): boolean {
  if (key.alg !== ALG_ED25519) return false;
  const s = n.signatures.find((x) => x.name === key.name && x.keyId.equals(key.keyId));
  if (s?.sig.length !== 64) return false;
  return crypto.verify(null, Buffer.from(n.text, 'utf8'), ed25519PublicKey(key.publicKey), s.sig);
}

/** The cosignature/v1 signed message: header line, time line, then the checkpoint text. */
export function cosignatureMessage(checkpointText: string, timestamp: number): Buffer {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) fail('cosignature timestamp must be a non-negative integer');
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${checkpointText}`, 'utf8');
}

export interface Cosignature {
  name: string;
  keyId: Buffer;
  timestamp: number;
  sig: Buffer;
}

/** Read a cosignature's timestamp and Ed25519 signature from a note signature (72 bytes after the key ID). */
export function toCosignature(s: NoteSignature): Cosignature | undefined {
  if (s.sig.length !== 72) return undefined;
  const ts = s.sig.readBigUInt64BE(0);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { name: s.name, keyId: s.keyId, timestamp: Number(ts), sig: s.sig.subarray(8) };
}

/** Verify a cosignature/v1 by a witness key (type 0x04) over the checkpoint text. */
export function verifyCosignature(checkpointText: string, c: Cosignature, key: NoteVerifierKey): boolean {
  if (key.alg !== ALG_COSIGNATURE_V1 || c.name !== key.name || !c.keyId.equals(key.keyId)) return false;
  return crypto.verify(null, cosignatureMessage(checkpointText, c.timestamp), ed25519PublicKey(key.publicKey), c.sig);
}

/** A cosignature/v1 signature line for a witness key (what a witness returns; used by tests and tools). */
export function cosign(checkpointText: string, witness: { name: string; privateKey: crypto.KeyObject; timestamp: number }): NoteSignature {
  const pub = Buffer.from(witness.privateKey.export({ format: 'jwk' }).x!, 'base64url');
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(witness.timestamp));
  const sig = crypto.sign(null, cosignatureMessage(checkpointText, witness.timestamp), witness.privateKey);
  return { name: witness.name, keyId: noteKeyId(witness.name, ALG_COSIGNATURE_V1, pub), sig: Buffer.concat([ts, sig]) };
}

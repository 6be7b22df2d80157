/** Anchors as C2SP tlog-checkpoints: the Ed25519 checkpoint key, signing, and checking a stored checkpoint. */
import type { KeyRecord } from '../../crypto/keys';
import {
  ALG_ED25519,
  formatCheckpoint,
  formatNote,
  formatVkey,
  parseCheckpoint,
  parseNote,
  parseVkey,
  signNoteText,
  verifyNoteSignature,
  type Checkpoint,
} from '../../merkle';
import type { AppContext } from '../context';
import { badInput } from '../../lib/errors';

/** Key-store purpose of the Ed25519 keys that sign checkpoints (rotated like the others: `stella keys rotate --purpose checkpoint`). */
export const CHECKPOINT_PURPOSE = 'checkpoint';

function rawPublicKey(k: KeyRecord): Buffer {
  return Buffer.from(String(k.publicJwk.x), 'base64url');
}

/** The active checkpoint key, generated (Ed25519) the first time a checkpoint is signed. */
async function activeCheckpointKey(ctx: Pick<AppContext, 'keys'>): Promise<KeyRecord> {
  const have = (await ctx.keys.list()).filter((k) => k.purpose === CHECKPOINT_PURPOSE && k.status === 'active');
  if (have.length) {
    const k = await ctx.keys.active(CHECKPOINT_PURPOSE);
    // A note signature is Ed25519 (signed-note type 0x01); another algorithm cannot sign checkpoints.
    if (k.alg !== 'EdDSA') throw badInput(`checkpoint key ${k.kid} is ${k.alg}; rotate it with stella keys rotate --purpose checkpoint --alg EdDSA`);
    return k;
  }
  return ctx.keys.generate({ alg: 'EdDSA', purpose: CHECKPOINT_PURPOSE });
}

/** Sign the checkpoint of a tree (size, root) with the active checkpoint key; the key name is the origin. */
export async function signCheckpoint(ctx: Pick<AppContext, 'keys' | 'cfg'>, size: number, root: Buffer): Promise<{ note: string; kid: string }> {
  const rec = await activeCheckpointKey(ctx);
  const signer = await ctx.keys.signer(rec.kid);
  const origin = ctx.cfg.anchoring.origin;
  const text = formatCheckpoint({ origin, size, rootHash: root, extensions: [] });
  const sig = await signNoteText(text, { name: origin, publicKey: rawPublicKey(rec), sign: signer.sign });
  return { note: formatNote({ text, signatures: [sig] }), kid: rec.kid };
}

export interface CheckpointKey {
  kid: string;
  status: string;
  name: string;
  /** The vkey tlog tooling verifies with (note.NewVerifier). */
  vkey: string;
}

/** Every checkpoint key (active and retired) as vkeys under the configured origin. */
export async function checkpointKeys(ctx: Pick<AppContext, 'keys' | 'cfg'>, origin = ctx.cfg.anchoring.origin): Promise<CheckpointKey[]> {
  return (await ctx.keys.list())
    .filter((k) => k.purpose === CHECKPOINT_PURPOSE && k.alg === 'EdDSA')
    .map((k) => ({ kid: k.kid, status: k.status, name: origin, vkey: formatVkey(origin, ALG_ED25519, rawPublicKey(k)) }));
}

/**
 * What is wrong with an anchor's stored checkpoint, if anything: it must parse, be signed by
 * the checkpoint key it names (any status: retired keys still verify what they signed), and
 * commit to the anchor's signed size and root.
 */
export async function checkpointProblem(
  ctx: Pick<AppContext, 'keys'>,
  a: { checkpoint: string; checkpointKid: string | null; logSize: number; rootHash: string },
): Promise<{ kind: 'signature' | 'mismatch' | 'unknown-key'; detail: string; checkpoint?: Checkpoint } | undefined> {
  let cp: Checkpoint;
  let text: string;
  try {
    const note = parseNote(a.checkpoint);
    text = note.text;
    cp = parseCheckpoint(text);
    const rec = (await ctx.keys.list()).find((k) => k.kid === a.checkpointKid && k.purpose === CHECKPOINT_PURPOSE);
    if (!rec) return { kind: 'unknown-key', detail: `checkpoint key ${String(a.checkpointKid)} is not in the key store` };
    const key = parseVkey(formatVkey(cp.origin, ALG_ED25519, rawPublicKey(rec)));
    if (!verifyNoteSignature(note, key))
      return { kind: 'signature', detail: `checkpoint signature by ${cp.origin} (key ${rec.kid.slice(0, 8)}) does not verify` };
  } catch (e) {
    return { kind: 'signature', detail: `checkpoint is malformed: ${(e as Error).message}` };
  }
  if (cp.size !== a.logSize || cp.rootHash.toString('hex') !== a.rootHash) {
    return {
      kind: 'mismatch',
      detail: `checkpoint commits to size ${cp.size} root ${cp.rootHash.toString('hex').slice(0, 16)}… but the anchor signs size ${a.logSize} root ${a.rootHash.slice(0, 16)}…`,
      checkpoint: cp,
    };
  }
  return undefined;
}

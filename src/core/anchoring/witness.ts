/** Witness cosignatures (C2SP tlog-cosignature/v1) on anchor checkpoints, from configured witness keys, and the k-of-n policy. */
import { ALG_COSIGNATURE_V1, parseNote, parseVkey, toCosignature, verifyCosignature, type NoteSignature, type NoteVerifierKey } from '../../merkle';
import { badInput, conflict } from '../../lib/errors';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { anchorById } from './store';

export interface WitnessPolicy {
  quorum: number;
  witnesses: { name: string; keyId: string; vkey: string }[];
}

export interface StoredCosignature {
  witness: string;
  keyId: string;
  signedAt: string;
  line: string;
}

/** The configured witness keys (STELLA_WITNESS_KEYS); a key that is not a cosignature/v1 vkey is bad configuration. */
export function witnessKeys(ctx: Pick<AppContext, 'cfg'>): NoteVerifierKey[] {
  return ctx.cfg.anchoring.witnesses.map((v) => {
    let k: NoteVerifierKey;
    try {
      k = parseVkey(v);
    } catch (e) {
      throw badInput(`STELLA_WITNESS_KEYS: ${(e as Error).message}`);
    }
    if (k.alg !== ALG_COSIGNATURE_V1) throw badInput(`STELLA_WITNESS_KEYS: ${k.name} is not a cosignature/v1 key (type 0x04)`);
    return k;
  });
}

export function witnessPolicy(ctx: Pick<AppContext, 'cfg'>): WitnessPolicy {
  return {
    quorum: ctx.cfg.anchoring.witnessQuorum,
    witnesses: witnessKeys(ctx).map((k, i) => ({ name: k.name, keyId: k.keyId.toString('hex'), vkey: ctx.cfg.anchoring.witnesses[i]!.trim() })),
  };
}

/** Signature lines from what a witness sent: a cosigned note (checkpoint + lines) or bare "— name sig" lines. */
function signatureLines(body: string): NoteSignature[] {
  const text = body.includes('\n\n') ? body : `x\n\n${body.trim()}\n`;
  try {
    return parseNote(text.endsWith('\n') ? text : `${text}\n`).signatures;
  } catch (e) {
    throw badInput(`cosignature: ${(e as Error).message}`);
  }
}

const lineOf = (s: NoteSignature) => `\u2014 ${s.name} ${Buffer.concat([s.keyId, s.sig]).toString('base64')}`;

/**
 * `anchor witness add`: store the cosignatures in `body` that come from configured witnesses and
 * verify over the anchor's checkpoint. Lines of other keys (e.g. the log's own signature) are
 * ignored; a configured witness's line that does not verify is rejected, and nothing is stored.
 */
export async function addCosignatures(
  ctx: Pick<AppContext, 'cfg' | 'db'>,
  anchorId: string,
  body: string,
  actor: string,
): Promise<{ anchorId: string; added: StoredCosignature[] }> {
  if (typeof body !== 'string' || !body.trim() || body.length > 64 * 1024) throw badInput('cosignature must be a non-empty text of at most 64 KiB');
  const a = await anchorById(ctx, anchorId);
  const r = await ctx.db.query('SELECT checkpoint FROM anchors WHERE id = $1', [a.id]);
  const checkpoint: string | null = r.rows[0]?.checkpoint ?? null;
  if (!checkpoint) throw conflict(`anchor ${a.id.slice(0, 12)} predates checkpoints; witnesses cosign checkpoints only`);
  const cpText = parseNote(checkpoint).text;
  const keys = witnessKeys(ctx);
  if (!keys.length) throw conflict('no witness keys are configured (STELLA_WITNESS_KEYS)');
  const accepted: { s: NoteSignature; ts: number }[] = [];
  for (const s of signatureLines(body)) {
    const key = keys.find((k) => k.name === s.name && k.keyId.equals(s.keyId));
    if (!key) continue;
    const c = toCosignature(s);
    if (!c || !verifyCosignature(cpText, c, key))
      throw badInput(`cosignature by witness ${s.name} does not verify over the checkpoint of anchor ${a.id.slice(0, 12)}`);
    if (c.timestamp * 1000 > Date.now() + 5 * 60_000) throw badInput(`cosignature by witness ${s.name} is dated in the future`);
    accepted.push({ s, ts: c.timestamp });
  }
  if (!accepted.length) throw badInput(`no cosignature from a configured witness (${keys.map((k) => k.name).join(', ')})`);
  const added = accepted.map(({ s, ts }) => ({
    witness: s.name,
    keyId: s.keyId.toString('hex'),
    signedAt: new Date(ts * 1000).toISOString(),
    line: lineOf(s),
  }));
  for (const c of added) {
    await ctx.db.query(
      `INSERT INTO anchor_cosignatures (anchor_id, witness, key_id, signed_at, line, added_by) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (anchor_id, witness, key_id) DO UPDATE SET signed_at = EXCLUDED.signed_at, line = EXCLUDED.line, added_by = EXCLUDED.added_by, added_at = now()`,
      [a.id, c.witness, c.keyId, c.signedAt, c.line, actor],
    );
  }
  await audit(ctx.db, { tenant: '*', actor, action: 'evidence.anchor.witness', target: a.id, details: { witnesses: added.map((c) => c.witness) } });
  return { anchorId: a.id, added };
}

export async function storedCosignatures(ctx: Pick<AppContext, 'db'>, anchorIds: string[]): Promise<Map<string, StoredCosignature[]>> {
  const out = new Map<string, StoredCosignature[]>();
  if (!anchorIds.length) return out;
  const r = await ctx.db.query('SELECT anchor_id, witness, key_id, signed_at, line FROM anchor_cosignatures WHERE anchor_id = ANY($1) ORDER BY witness', [
    anchorIds,
  ]);
  for (const row of r.rows) {
    const list = out.get(row.anchor_id) ?? [];
    list.push({ witness: row.witness, keyId: row.key_id, signedAt: new Date(row.signed_at).toISOString(), line: row.line });
    out.set(row.anchor_id, list);
  }
  return out;
}

/** Distinct configured witnesses whose stored cosignature verifies over this checkpoint (re-verified, never trusted from the table). */
export function validWitnesses(checkpoint: string, cosigs: StoredCosignature[], keys: NoteVerifierKey[]): string[] {
  const text = parseNote(checkpoint).text;
  const ok = new Set<string>();
  for (const c of cosigs) {
    const key = keys.find((k) => k.name === c.witness && k.keyId.toString('hex') === c.keyId);
    if (!key) continue;
    const s = signatureLines(c.line)[0];
    const cs = s && toCosignature(s);
    if (cs && verifyCosignature(text, cs, key)) ok.add(`${key.name}+${c.keyId}`);
  }
  return [...ok];
}

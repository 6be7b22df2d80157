/**
 * Gate facts, the I/O half of gate evaluation: the present evidence naming an artifact, and
 * what the documents the gates need say (CycloneDX or not, scan counts, attestation
 * statements checked with or without the RootPack). Never throws for bad evidence: a
 * document that cannot be read or verified becomes a fact with its error.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyStore } from '../../crypto/keys';
import { exportRootPack, rootPackResolver, type RootPack } from '../../crypto/rootpack';
import type { TrustResolver } from '../../crypto/dsse';
import { statementFromEnvelope, verifyStatement, type Statement } from '../../crypto/intoto';
import { mapLimit } from '../../lib/concurrency';
import type { AppContext } from '../context';
import { gateCandidates, type GateCandidate } from '../evidence/queries/promotion';
import { SIGNING_PURPOSE } from '../keys';
import { imageRefFor } from '../scan/catalogue';
import { type DocumentFact, type EvidenceFacts, type StatementCheck, documentsToRead } from './decide';
import type { PromotionPolicy } from './policy';

const MAX_JSON_BYTES = 16 * 1024 * 1024;
const READ_CONCURRENCY = 4;

export interface GatherQuery {
  tenant: string;
  artifactDigest: string;
  imageRef: string | null;
  policy: PromotionPolicy;
  now: Date;
  /** Trust anchor for attestation signatures; exported from ctx.keys when omitted. */
  rootPack?: RootPack;
}

/** Reads what the gates of `policy` need to decide about `artifactDigest`. */
export async function gatherEvidence(ctx: AppContext, q: GatherQuery): Promise<EvidenceFacts> {
  const candidates = await gateCandidates(ctx.db, q.tenant, q.artifactDigest);
  let pack: Promise<RootPack> | undefined = q.rootPack ? Promise.resolve(q.rootPack) : undefined;
  const rootPack = () => (pack ??= currentRootPack(ctx.keys));
  const toRead = documentsToRead(q.policy, candidates, q.now);
  const facts = await mapLimit(toRead, READ_CONCURRENCY, async ({ candidate, trusted }) => {
    const doc = await readJson(ctx, q.tenant, candidate).then(
      (value) => ({ ok: true as const, value }),
      (e: unknown) => ({ ok: false as const, error: problemText(e) }),
    );
    return [candidate.id, await documentFact(candidate, doc, trusted, rootPack)] as const;
  });
  return { artifactDigest: q.artifactDigest, imageRef: q.imageRef, candidates, documents: Object.fromEntries(facts) };
}

type Read = { ok: true; value: unknown } | { ok: false; error: string };

async function documentFact(c: GateCandidate, doc: Read, trusted: boolean, rootPack: () => Promise<RootPack>): Promise<DocumentFact> {
  switch (c.kind) {
    case 'sbom':
      return { kind: 'sbom', cyclonedx: doc.ok && (doc.value as { bomFormat?: unknown } | null)?.bomFormat === 'CycloneDX' };
    case 'scan-report':
      return doc.ok ? { kind: 'scan-report', counts: (doc.value as { counts?: unknown } | null)?.counts } : { kind: 'scan-report', error: doc.error };
    case 'attestation': {
      if (!doc.ok) return { kind: 'attestation', unsigned: doc, ...(trusted ? { trusted: doc } : {}) };
      const unsigned = check(() => statementFromEnvelope(doc.value));
      if (!trusted) return { kind: 'attestation', unsigned };
      let trust: TrustResolver;
      try {
        trust = rootPackResolver(await rootPack(), { purpose: SIGNING_PURPOSE });
      } catch (e) {
        return { kind: 'attestation', unsigned, trusted: { ok: false, error: problemText(e) } };
      }
      // The signing time is the locker's ingestion time (trusted), never a claim in the payload.
      return { kind: 'attestation', unsigned, trusted: check(() => verifyStatement(doc.value, trust, c.createdAt).statement) };
    }
  }
}

function check(parse: () => Statement): StatementCheck {
  try {
    const s = parse();
    return { ok: true, predicateType: s.predicateType, subjectSha256: s.subject.map((x) => x.digest.sha256).filter((h): h is string => !!h) };
  } catch (e) {
    return { ok: false, error: problemText(e) };
  }
}

/** The error message, with each rejected signature's key id and reason when verification says why. */
function problemText(e: unknown): string {
  const sigs = (e as { details?: { signatures?: { keyid: string; reason: string }[] } }).details?.signatures;
  return `${(e as Error).message}${sigs?.length ? ` (${sigs.map((s) => `${s.keyid.slice(0, 8)}: ${s.reason}`).join('; ')})` : ''}`;
}

async function readJson(ctx: AppContext, tenant: string, c: GateCandidate): Promise<unknown> {
  if (c.size > MAX_JSON_BYTES) throw new Error(`${c.id} is ${c.size} bytes, too large to evaluate`);
  return JSON.parse((await ctx.evidence.read(tenant, c.id)).toString('utf8'));
}

const packCache = new WeakMap<KeyStore, { mtimeMs: number; pack: Promise<RootPack> }>();
/**
 * The RootPack of the key store, re-exported only when the key directory changed (every key
 * write is an atomic rename into it, which bumps its mtime): rotations are seen at once.
 */
export async function currentRootPack(keys: KeyStore): Promise<RootPack> {
  const mtimeMs = (await stat(join(keys.dir, 'keys'))).mtimeMs;
  const hit = packCache.get(keys);
  if (hit && hit.mtimeMs === mtimeMs) return hit.pack;
  const pack = exportRootPack(keys);
  packCache.set(keys, { mtimeMs, pack });
  pack.catch(() => packCache.delete(keys));
  return pack;
}

/** The image reference for an artifact, from the scanner's image catalogue. */
export async function lookupImageRef(ctx: AppContext, tenant: string, digest: string): Promise<string | null> {
  return imageRefFor(ctx, tenant, digest);
}

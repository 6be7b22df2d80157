/**
 * Gate facts, the I/O half of gate evaluation: the present evidence naming an artifact, and
 * what the documents the gates need say (CycloneDX or not, scan counts, attestation
 * statements checked with or without the RootPack). Never throws for bad evidence: a
 * document that cannot be read or verified becomes a fact with its error.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyStore } from '../../crypto/keys';
import { rootPackResolver, type RootPack } from '../../crypto/rootpack';
import { combineTrust, type TrustResolver, type VerifyResult } from '../../crypto/dsse';
import { statementFromEnvelope, verifyStatement, type Statement } from '../../crypto/intoto';
import { trustedRootPack, trustFile } from '../evidence/signed';
import { pemKeysOf } from './policy';
import { mapLimit } from '../../lib/concurrency';
import type { AppContext } from '../context';
import { gateCandidates, type GateCandidate } from '../evidence/queries/promotion';
import { SIGNING_PURPOSE } from '../keys';
import { imageRefFor } from '../scan/catalogue';
import { type DocumentFact, type EvidenceFacts, type ReportFinding, type StatementCheck, documentsToRead } from './decide';
import type { PromotionPolicy } from './policy';

const MAX_JSON_BYTES = 16 * 1024 * 1024;
const READ_CONCURRENCY = 4;

export interface GatherQuery {
  tenant: string;
  artifactDigest: string;
  imageRef: string | null;
  policy: PromotionPolicy;
  now: Date;
  /** Trust anchor for attestation signatures; the trusted RootPack (own keys + imported) when omitted. */
  rootPack?: RootPack;
}

/** Reads what the gates of `policy` need to decide about `artifactDigest`. */
export async function gatherEvidence(ctx: AppContext, q: GatherQuery): Promise<EvidenceFacts> {
  const candidates = await gateCandidates(ctx.db, q.tenant, q.artifactDigest);
  const pack = await (q.rootPack ? Promise.resolve(q.rootPack) : currentRootPack(ctx));
  const own = new Set((await ctx.keys.list()).filter((k) => k.purpose === SIGNING_PURPOSE).map((k) => k.kid));
  const keys = {
    stella: [...own],
    rootpack: pack.keys.filter((k) => k.purposes.includes(SIGNING_PURPOSE) && !own.has(k.kid)).map((k) => k.kid),
  };
  // Signatures are checked again now against the RootPack and the policy's PEM keys (a key revoked since ingest no longer counts).
  const pem = pemKeysOf([q.policy]);
  const fromPack = rootPackResolver(pack, { purpose: SIGNING_PURPOSE });
  const trust: TrustResolver = combineTrust(fromPack, pem); // also tries them for signatures without a key id (cosign's)
  const toRead = documentsToRead(q.policy, candidates, q.now, keys);
  const facts = await mapLimit(toRead, READ_CONCURRENCY, async ({ candidate, trusted }) => {
    const doc = await readJson(ctx, q.tenant, candidate).then(
      (value) => ({ ok: true as const, value }),
      (e: unknown) => ({ ok: false as const, error: problemText(e) }),
    );
    return [candidate.id, documentFact(candidate, doc, trusted, trust)] as const;
  });
  return { artifactDigest: q.artifactDigest, imageRef: q.imageRef, candidates, documents: Object.fromEntries(facts), keys };
}

type Read = { ok: true; value: unknown } | { ok: false; error: string };

function documentFact(c: GateCandidate, doc: Read, trusted: boolean, trust: TrustResolver): DocumentFact {
  // Signed statements (any kind) are checked as envelopes.
  if (trusted || c.kind === 'attestation') {
    if (!doc.ok) return { kind: 'attestation', unsigned: doc, ...(trusted ? { trusted: doc } : {}) };
    const unsigned = check(() => ({ statement: statementFromEnvelope(doc.value) }));
    if (!trusted) return { kind: 'attestation', unsigned };
    // The signing time is the locker's ingestion time (trusted), never a claim in the payload.
    return { kind: 'attestation', unsigned, trusted: check(() => verifyStatement(doc.value, trust, c.createdAt)) };
  }
  if (c.kind === 'sbom') return { kind: 'sbom', cyclonedx: doc.ok && (doc.value as { bomFormat?: unknown } | null)?.bomFormat === 'CycloneDX' };
  if (!doc.ok) return { kind: 'scan-report', error: doc.error };
  const findings = reportFindings((doc.value as { findings?: unknown } | null)?.findings);
  return { kind: 'scan-report', counts: (doc.value as { counts?: unknown } | null)?.counts, ...(findings ? { findings } : {}) };
}

const SEVERITIES = new Set(['critical', 'high', 'medium', 'low', 'none', 'unknown']);
/** The findings of a stella scan report (id, aliases, package purl, severity), when it lists them. */
function reportFindings(v: unknown): ReportFinding[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.map((f) => {
    const x = (f ?? {}) as { id?: unknown; aliases?: unknown; package?: { purl?: unknown }; severity?: unknown };
    const sev = typeof x.severity === 'string' && SEVERITIES.has(x.severity) ? (x.severity as ReportFinding['severity']) : 'unknown';
    return {
      id: typeof x.id === 'string' ? x.id : '',
      aliases: Array.isArray(x.aliases) ? x.aliases.filter((a): a is string => typeof a === 'string') : [],
      ...(typeof x.package?.purl === 'string' ? { purl: x.package.purl } : {}),
      severity: sev,
    };
  });
}

function check(parse: () => { statement: Statement; verification?: VerifyResult }): StatementCheck {
  try {
    const { statement: s, verification } = parse();
    return {
      ok: true,
      predicateType: s.predicateType,
      subjectSha256: s.subject.map((x) => x.digest.sha256).filter((h): h is string => !!h),
      predicate: s.predicate,
      ...(verification ? { signers: verification.signatures.filter((x) => x.valid && x.trusted).map((x) => x.keyid) } : {}),
    };
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
  // The candidate query just read the item as present: its row is the head the read needs (no second lookup).
  const known = c.tier
    ? { id: c.id, kind: c.kind, mediaType: c.mediaType, size: c.size, state: 'present' as const, stateReason: null, tier: c.tier }
    : undefined;
  return JSON.parse((await ctx.evidence.read(tenant, c.id, known)).toString('utf8'));
}

const packCache = new WeakMap<KeyStore, { stamp: string; pack: Promise<RootPack> }>();
/**
 * The trusted RootPack (own keys + imported trust), re-read only when the key directory or the
 * imported trust file changed (every write is an atomic rename, which bumps the mtime): rotations
 * and revocations are seen at once.
 */
export async function currentRootPack(ctx: Pick<AppContext, 'keys' | 'cfg'>): Promise<RootPack> {
  const mtime = (p: string) =>
    stat(p).then(
      (s) => s.mtimeMs,
      () => 0,
    );
  const stamp = `${await mtime(join(ctx.keys.dir, 'keys'))}/${await mtime(trustFile(ctx.cfg.dataDir))}`;
  const hit = packCache.get(ctx.keys);
  if (hit && hit.stamp === stamp) return hit.pack;
  const pack = trustedRootPack(ctx.keys, ctx.cfg.dataDir);
  packCache.set(ctx.keys, { stamp, pack });
  pack.catch(() => packCache.delete(ctx.keys));
  return pack;
}

/** The image reference for an artifact, from the scanner's image catalogue. */
export async function lookupImageRef(ctx: AppContext, tenant: string, digest: string): Promise<string | null> {
  return imageRefFor(ctx, tenant, digest);
}

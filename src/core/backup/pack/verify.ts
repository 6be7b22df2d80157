/**
 * `stella evidence verify --offline --input evidence-pack.tar.gz` for evidence packs: files,
 * digests, Merkle inclusion of every item under a signed anchor, the anchor signature and DSSE
 * attestations under the RootPack the verifier trusts (`--rootpack` or the configured one, see
 * ./trust.ts). The pack's own rootpack.json is only reported, never trusted: a re-forged pack
 * carries the forger's RootPack. No database, no API, no network: this module imports only the
 * archive, Merkle and signature libraries.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readTar,
  extractTar,
  verifyManifestArchive,
  parseManifest,
  MANIFEST_PATH,
  ArchiveError,
  type ManifestProblem,
  type TarReadOptions,
} from '../../../archive';
import { rootPackResolver, trustAt, type RootPack } from '../../../crypto/rootpack';
import { verifyEnvelope } from '../../../crypto/dsse';
import { verifyAnchor, verifyInclusion, hashFromHex, leafHash, decodeLeaf, hashEquals, type AnchorPayload } from '../../../merkle';
import { sha256File } from '../../../lib/hash';
import { describeEmbedded, type EmbeddedRootPack, type TrustedRootPack } from './trust';

const PACK_KIND = 'evidence-pack';
const SIGNING = 'signing';
/** Extraction limits: a pack is refused (not truncated) beyond these. */
export const PACK_LIMITS: TarReadOptions = { maxEntryBytes: 2 * 1024 ** 3, maxTotalBytes: 16 * 1024 ** 3, maxEntries: 200_000 };

export interface PackProblem {
  item?: string;
  path?: string;
  reason: string;
}
export interface PackVerifyResult {
  ok: boolean;
  kind: 'evidence-pack';
  input: string;
  artifact: string | null;
  items: number;
  attestations: { id: string; ok: boolean; detail: string }[];
  anchor: { id: string; logSize: number; rootHash: string; kid: string; createdAt: string } | null;
  /** The RootPack everything was verified against. */
  trustedRootPack: { source: TrustedRootPack['source']; path: string; fingerprint: string; keyIds: string[] };
  /** The pack's own rootpack.json: reported, never trusted. */
  embeddedRootPack: EmbeddedRootPack | null;
  manifestSha256: string | null;
  problems: PackProblem[];
}

/** Reads only manifest.json to tell an evidence pack from other manifest archives. */
export async function manifestKindOf(file: string): Promise<string | null> {
  try {
    for await (const e of readTar(file, PACK_LIMITS)) {
      if (e.type === 'file' && e.path === MANIFEST_PATH) return parseManifest(await e.buffer()).kind;
    }
  } catch {
    return null;
  }
  return null;
}

export async function isEvidencePack(file: string): Promise<boolean> {
  return (await manifestKindOf(file)) === PACK_KIND;
}

const itemOfPath = (p: string): string | undefined => {
  const m = /^(?:items|proofs)\/([0-9a-f]{64})(?:\.json)?$/.exec(p);
  return m ? `sha256:${m[1]}` : undefined;
};

interface IndexedItem {
  id: string;
  kind: string;
  mediaType: string;
  size: number;
  createdAt: string;
  logSeq: number;
  leaf: string;
  leafHash: string;
  path: string;
}
type Fail = (p: PackProblem) => void;
const readJson = async (root: string, p: string) => JSON.parse(await fsp.readFile(join(root, p), 'utf8'));

export async function verifyEvidencePack(input: string, opts: { trusted: TrustedRootPack }): Promise<PackVerifyResult> {
  const { trusted } = opts;
  const out = emptyResult(input, trusted);
  const fail: Fail = (p) => out.problems.push(p);

  // 1. Every file against the manifest (one streaming pass; unsafe archives throw).
  const mv = await verifyManifestArchive(input, PACK_LIMITS);
  out.manifestSha256 = mv.manifestSha256;
  for (const p of mv.problems) fail(manifestProblem(p));
  if (!mv.manifest) return out;
  if (mv.manifest.kind !== PACK_KIND) throw new ArchiveError('wrong-kind', `${input} is a ${mv.manifest.kind} archive, not an evidence pack`);

  // 2. Extract (path traversal, links, oversize entries refused by the extractor) and check content.
  const dir = await fsp.mkdtemp(join(tmpdir(), 'stella-pack-'));
  try {
    await extractTar(input, join(dir, 'x'), PACK_LIMITS);
    const root = join(dir, 'x');
    out.embeddedRootPack = await describeEmbedded(await fsp.readFile(join(root, 'rootpack.json')).catch(() => null), trusted);

    // 3. The anchor: signature under a trusted signing key, within that key's window.
    const payload = await checkAnchor(root, trusted, out);
    if (!payload) return out;
    const anchorRoot = hashFromHex(payload.rootHash);

    // 4. Each item: bytes = id, leaf names the item, leaf hash, inclusion under the anchored root.
    const index = await readJson(root, 'index.json');
    out.artifact = index.artifact ?? null;
    const listed = new Set<string>();
    for (const it of index.items as IndexedItem[]) {
      out.items++;
      listed.add(it.path);
      const bad = (reason: string) => fail({ item: it.id, path: it.path, reason });
      const problem = await itemProblem(root, it, payload, anchorRoot);
      if (problem) bad(problem);
      // 5. DSSE attestations: at least one valid signature by a key trusted at ingestion time.
      else if (it.kind === 'attestation') await checkAttestation(root, it, trusted.rootpack, out, bad);
    }
    for (const e of mv.manifest.entries) {
      if (e.path.startsWith('items/') && !listed.has(e.path)) fail({ item: itemOfPath(e.path), path: e.path, reason: 'item bytes not listed in index.json' });
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
  out.problems = firstPerItem(out.problems);
  out.ok = out.problems.length === 0;
  return out;
}

function emptyResult(input: string, trusted: TrustedRootPack): PackVerifyResult {
  return {
    ok: false,
    kind: 'evidence-pack',
    input,
    artifact: null,
    items: 0,
    attestations: [],
    anchor: null,
    trustedRootPack: { source: trusted.source, path: trusted.path, fingerprint: trusted.fingerprint, keyIds: trusted.keyIds },
    embeddedRootPack: null,
    manifestSha256: null,
    problems: [],
  };
}

function manifestProblem(p: ManifestProblem): PackProblem {
  return {
    item: itemOfPath(p.path),
    path: p.path,
    reason: `${p.reason}${p.expected !== undefined ? ` (manifest ${p.expected}, found ${p.actual})` : ''}${p.detail ? `: ${p.detail}` : ''}`,
  };
}

/** The anchor's payload when it verifies under the trusted RootPack (sets out.anchor); otherwise records why and returns null. */
async function checkAnchor(root: string, trusted: TrustedRootPack, out: PackVerifyResult): Promise<AnchorPayload | null> {
  const trust = trusted.rootpack;
  try {
    const a = await readJson(root, 'anchor.json');
    const key = trust.keys.find((k) => k.kid === a.kid && k.purposes.includes(SIGNING) && k.status !== 'revoked');
    if (!key) throw new Error(`anchor key ${a.kid} is not a trusted signing key in the trusted RootPack ${trusted.fingerprint} (${trusted.source})`);
    const v = await verifyAnchor(a.jws, (kid) => (kid === key.kid ? key.publicJwk : undefined));
    const payload = v.payload;
    if (v.hash !== a.id) throw new Error(`anchor id ${a.id} is not the hash of its JWS (${v.hash})`);
    const w = trustAt(trust, key.kid, new Date(payload.createdAt), SIGNING);
    if (!w.trusted) throw new Error(`key ${key.kid} was not trusted when the anchor was signed: ${w.reason}`);
    out.anchor = { id: v.hash, logSize: payload.logSize, rootHash: payload.rootHash, kid: payload.kid, createdAt: payload.createdAt };
    return payload;
  } catch (e) {
    out.problems.push({ path: 'anchor.json', reason: `anchor does not verify: ${(e as Error).message}` });
    return null;
  }
}

/** The first reason an item fails: its bytes, its log leaf, or its inclusion under the anchored root. */
async function itemProblem(root: string, it: IndexedItem, payload: AnchorPayload, anchorRoot: Uint8Array): Promise<string | undefined> {
  if (it.path !== `items/${it.id.slice(7)}`) return 'unexpected item path';
  const actual = await sha256File(join(root, it.path)).then(
    (h) => h.digest,
    () => null,
  );
  if (actual !== it.id) return actual ? `content hashes to ${actual}` : 'item bytes missing';
  const leaf = Buffer.from(it.leaf, 'base64');
  let decoded: ReturnType<typeof decodeLeaf>;
  try {
    decoded = decodeLeaf(leaf);
  } catch (e) {
    return `leaf is not a canonical log leaf: ${(e as Error).message}`;
  }
  if (decoded.id !== it.id) return `log leaf names ${decoded.id}, not this item`;
  const lh = leafHash(leaf);
  if (!hashEquals(lh, hashFromHex(it.leafHash))) return 'leaf hash does not match the leaf bytes';
  let proof: { leafIndex: number; treeSize: number; leafHash: string; proof: string[] };
  try {
    proof = await readJson(root, `proofs/${it.id.slice(7)}.json`);
  } catch {
    return 'inclusion proof missing';
  }
  if (proof.leafIndex !== it.logSeq || proof.treeSize !== payload.logSize || proof.leafHash !== it.leafHash) {
    return `inclusion proof is for leaf ${proof.leafIndex}@${proof.treeSize}, expected ${it.logSeq}@${payload.logSize}`;
  }
  const path = proof.proof.map((h) => hashFromHex(h));
  if (!verifyInclusion(lh, proof.leafIndex, proof.treeSize, path, anchorRoot)) return `inclusion proof does not verify against anchor root ${payload.rootHash}`;
  return undefined;
}

/** A DSSE attestation verifies under the trusted RootPack as of its ingestion time; other attestation bytes pass on integrity alone. */
async function checkAttestation(root: string, it: IndexedItem, trust: RootPack, out: PackVerifyResult, bad: (reason: string) => void) {
  let env: unknown;
  try {
    env = JSON.parse(await fsp.readFile(join(root, it.path), 'utf8'));
  } catch {
    env = null;
  }
  const isDsse = !!env && typeof env === 'object' && 'payloadType' in env && 'signatures' in env;
  if (!isDsse) {
    out.attestations.push({ id: it.id, ok: true, detail: 'not a DSSE envelope (content integrity and inclusion verified)' });
    return;
  }
  try {
    const r = verifyEnvelope(env, rootPackResolver(trust), new Date(it.createdAt));
    const detail = r.ok
      ? `DSSE signature by ${r.signatures.find((s) => s.valid && s.trusted)?.keyid}`
      : `DSSE signature does not verify: ${r.signatures.map((s) => `${s.keyid || '?'}: ${s.reason}`).join('; ') || 'no signatures'}`;
    out.attestations.push({ id: it.id, ok: r.ok, detail });
    if (!r.ok) bad(detail);
  } catch (e) {
    out.attestations.push({ id: it.id, ok: false, detail: (e as Error).message });
    bad(`malformed DSSE envelope: ${(e as Error).message}`);
  }
}

/** One problem per item is enough to name it; keep the first. */
function firstPerItem(problems: PackProblem[]): PackProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = p.item ?? p.path ?? p.reason;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

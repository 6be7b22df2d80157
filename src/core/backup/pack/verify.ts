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
import { readTar, extractTar, verifyManifestArchive, parseManifest, MANIFEST_PATH, ArchiveError, type TarReadOptions } from '../../../archive';
import { rootPackResolver, trustAt } from '../../../crypto/rootpack';
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

export async function verifyEvidencePack(input: string, opts: { trusted: TrustedRootPack }): Promise<PackVerifyResult> {
  const { trusted } = opts;
  const trust = trusted.rootpack;
  const out: PackVerifyResult = {
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
  const fail = (p: PackProblem) => out.problems.push(p);

  // 1. Every file against the manifest (one streaming pass; unsafe archives throw).
  const mv = await verifyManifestArchive(input, PACK_LIMITS);
  out.manifestSha256 = mv.manifestSha256;
  for (const p of mv.problems)
    fail({
      item: itemOfPath(p.path),
      path: p.path,
      reason: `${p.reason}${p.expected !== undefined ? ` (manifest ${p.expected}, found ${p.actual})` : ''}${p.detail ? `: ${p.detail}` : ''}`,
    });
  if (!mv.manifest) return out;
  if (mv.manifest.kind !== PACK_KIND) throw new ArchiveError('wrong-kind', `${input} is a ${mv.manifest.kind} archive, not an evidence pack`);

  // 2. Extract (path traversal, links, oversize entries refused by the extractor) and check content.
  const dir = await fsp.mkdtemp(join(tmpdir(), 'stella-pack-'));
  try {
    await extractTar(input, join(dir, 'x'), PACK_LIMITS);
    const root = join(dir, 'x');
    const readJson = async (p: string) => JSON.parse(await fsp.readFile(join(root, p), 'utf8'));

    out.embeddedRootPack = await describeEmbedded(await fsp.readFile(join(root, 'rootpack.json')).catch(() => null), trusted);

    // 3. The anchor: signature under a trusted signing key, within that key's window.
    let payload: AnchorPayload;
    try {
      const a = await readJson('anchor.json');
      const key = trust.keys.find((k) => k.kid === a.kid && k.purposes.includes(SIGNING) && k.status !== 'revoked');
      if (!key) throw new Error(`anchor key ${a.kid} is not a trusted signing key in the trusted RootPack ${trusted.fingerprint} (${trusted.source})`);
      const v = await verifyAnchor(a.jws, (kid) => (kid === key.kid ? key.publicJwk : undefined));
      payload = v.payload;
      if (v.hash !== a.id) throw new Error(`anchor id ${a.id} is not the hash of its JWS (${v.hash})`);
      const w = trustAt(trust, key.kid, new Date(payload.createdAt), SIGNING);
      if (!w.trusted) throw new Error(`key ${key.kid} was not trusted when the anchor was signed: ${w.reason}`);
      out.anchor = { id: v.hash, logSize: payload.logSize, rootHash: payload.rootHash, kid: payload.kid, createdAt: payload.createdAt };
    } catch (e) {
      fail({ path: 'anchor.json', reason: `anchor does not verify: ${(e as Error).message}` });
      return out;
    }
    const anchorRoot = hashFromHex(payload.rootHash);

    // 4. Each item: bytes = id, leaf names the item, leaf hash, inclusion under the anchored root.
    const index = await readJson('index.json');
    out.artifact = index.artifact ?? null;
    const listed = new Set<string>();
    for (const it of index.items as {
      id: string;
      kind: string;
      mediaType: string;
      size: number;
      createdAt: string;
      logSeq: number;
      leaf: string;
      leafHash: string;
      path: string;
    }[]) {
      out.items++;
      listed.add(it.path);
      const bad = (reason: string) => fail({ item: it.id, path: it.path, reason });
      if (it.path !== `items/${it.id.slice(7)}`) {
        bad('unexpected item path');
        continue;
      }
      const actual = await sha256File(join(root, it.path)).then(
        (h) => h.digest,
        () => null,
      );
      if (actual !== it.id) {
        bad(actual ? `content hashes to ${actual}` : 'item bytes missing');
        continue;
      }
      const leaf = Buffer.from(it.leaf, 'base64');
      let decoded: ReturnType<typeof decodeLeaf>;
      try {
        decoded = decodeLeaf(leaf);
      } catch (e) {
        bad(`leaf is not a canonical log leaf: ${(e as Error).message}`);
        continue;
      }
      if (decoded.id !== it.id) {
        bad(`log leaf names ${decoded.id}, not this item`);
        continue;
      }
      const lh = leafHash(leaf);
      if (!hashEquals(lh, hashFromHex(it.leafHash))) {
        bad('leaf hash does not match the leaf bytes');
        continue;
      }
      let proof: { leafIndex: number; treeSize: number; leafHash: string; proof: string[] };
      try {
        proof = await readJson(`proofs/${it.id.slice(7)}.json`);
      } catch {
        bad('inclusion proof missing');
        continue;
      }
      if (proof.leafIndex !== it.logSeq || proof.treeSize !== payload.logSize || proof.leafHash !== it.leafHash) {
        bad(`inclusion proof is for leaf ${proof.leafIndex}@${proof.treeSize}, expected ${it.logSeq}@${payload.logSize}`);
        continue;
      }
      if (
        !verifyInclusion(
          lh,
          proof.leafIndex,
          proof.treeSize,
          proof.proof.map((h) => hashFromHex(h)),
          anchorRoot,
        )
      ) {
        bad(`inclusion proof does not verify against anchor root ${payload.rootHash}`);
        continue;
      }
      // 5. DSSE attestations: at least one valid signature by a key trusted at ingestion time.
      if (it.kind === 'attestation') {
        let env: unknown;
        try {
          env = JSON.parse(await fsp.readFile(join(root, it.path), 'utf8'));
        } catch {
          env = null;
        }
        const isDsse = !!env && typeof env === 'object' && 'payloadType' in env && 'signatures' in env;
        if (!isDsse) out.attestations.push({ id: it.id, ok: true, detail: 'not a DSSE envelope (content integrity and inclusion verified)' });
        else {
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
      }
    }
    for (const e of mv.manifest.entries) {
      if (e.path.startsWith('items/') && !listed.has(e.path)) fail({ item: itemOfPath(e.path), path: e.path, reason: 'item bytes not listed in index.json' });
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
  // One problem per item is enough to name it; keep the first.
  const seen = new Set<string>();
  out.problems = out.problems.filter((p) => {
    const k = p.item ?? p.path ?? p.reason;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  out.ok = out.problems.length === 0;
  return out;
}

/**
 * What an attacker with only public tools can do to an evidence pack: change an item's bytes,
 * rebuild the Merkle log over the pack's items, sign a fresh anchor with their own key, re-sign
 * the DSSE attestations with it, embed that key's RootPack and write a new manifest. The result
 * is internally consistent: it verifies against its own embedded RootPack, and only a verifier
 * that trusts a RootPack of its own choosing tells it apart.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readTar, writeManifestArchive } from '../../src/archive';
import { canonicalJson } from '../../src/lib/canonical';
import { sha256Digest } from '../../src/lib/hash';
import { KeyStore } from '../../src/crypto/keys';
import { signEnvelope, type Envelope } from '../../src/crypto/dsse';
import { exportRootPack, type RootPack } from '../../src/crypto/rootpack';
import { anchorHash, decodeAnchorUnverified, decodeLeaf, encodeLeaf, inclusionProof, leafHash, merkleRoot, signAnchor } from '../../src/merkle';

interface IndexItem {
  id: string;
  kind: string;
  size: number;
  logSeq: number;
  leaf: string;
  leafHash: string;
  path: string;
  [k: string]: unknown;
}

/** Re-forges `genuine` into `out`; `tamper` may change any item's bytes (return them unchanged to keep an item). */
export async function reforgePack(
  genuine: string,
  out: string,
  tamper: (bytes: Buffer, item: IndexItem) => Buffer,
): Promise<{ rootpack: RootPack; rootpackFile: string }> {
  const files = new Map<string, Buffer>();
  for await (const e of readTar(genuine)) if (e.type === 'file') files.set(e.path, await e.buffer());
  const index = JSON.parse(files.get('index.json')!.toString('utf8')) as { items: IndexItem[]; [k: string]: unknown };
  const oldAnchor = JSON.parse(files.get('anchor.json')!.toString('utf8')) as { chainId: string };

  const keys = await KeyStore.open(mkdtempSync(join(tmpdir(), 'forger-keys-')));
  await keys.generate({ alg: 'ES256', purpose: 'signing' });
  const signer = await keys.signer();
  const rootpack = await exportRootPack(keys);
  // Everything is dated after the forger's key came to be, so its window covers it.
  const createdAt = new Date(Date.now() + 1).toISOString();

  const out_ = new Map<string, Buffer>();
  const items: IndexItem[] = [];
  for (const it of index.items) {
    let bytes = tamper(files.get(it.path)!, it);
    if (it.kind === 'attestation') {
      // Re-sign DSSE envelopes with the forger's key so they verify under the forged RootPack.
      try {
        const env = JSON.parse(bytes.toString('utf8')) as Envelope;
        if (env.payloadType && Array.isArray(env.signatures))
          bytes = Buffer.from(JSON.stringify(await signEnvelope(env.payloadType, Buffer.from(env.payload, 'base64'), [signer])));
      } catch {
        /* not an envelope */
      }
    }
    const id = sha256Digest(bytes);
    const leaf = encodeLeaf({ ...decodeLeaf(Buffer.from(it.leaf, 'base64')), id });
    items.push({ ...it, id, createdAt, size: bytes.length, leaf: leaf.toString('base64'), path: `items/${id.slice(7)}` });
    out_.set(`items/${id.slice(7)}`, bytes);
  }
  items.sort((a, b) => (a.id < b.id ? -1 : 1));
  const hashes = items.map((it) => leafHash(Buffer.from(it.leaf, 'base64')));
  const root = merkleRoot(hashes);
  const jws = await signAnchor(
    { chainId: oldAnchor.chainId, seq: 0, logSize: items.length, rootHash: root, prevAnchorHash: null, createdAt },
    { key: signer.privateKey, kid: signer.keyid },
  );
  items.forEach((it, i) => {
    it.logSeq = i;
    it.leafHash = hashes[i]!.toString('hex');
    out_.set(
      `proofs/${it.id.slice(7)}.json`,
      Buffer.from(
        canonicalJson({
          id: it.id,
          leafIndex: i,
          treeSize: items.length,
          leafHash: it.leafHash,
          proof: inclusionProof(i, hashes).map((h) => h.toString('hex')),
        }),
      ),
    );
  });
  out_.set(
    'anchor.json',
    Buffer.from(
      canonicalJson({
        id: anchorHash(jws),
        chainId: oldAnchor.chainId,
        seq: 0,
        logSize: items.length,
        rootHash: root.toString('hex'),
        kid: signer.keyid,
        createdAt,
        jws,
        payload: decodeAnchorUnverified(jws),
      }),
    ),
  );
  out_.set('index.json', Buffer.from(canonicalJson({ ...index, items })));
  out_.set('rootpack.json', Buffer.from(canonicalJson(rootpack)));
  const { archive } = await writeManifestArchive(
    [...out_].map(([path, data]) => ({ path, data })),
    { kind: 'evidence-pack', createdAt, compression: 'gzip' },
  );
  writeFileSync(out, archive);
  const rootpackFile = join(mkdtempSync(join(tmpdir(), 'forged-rootpack-')), 'rootpack.json');
  writeFileSync(rootpackFile, JSON.stringify(rootpack));
  return { rootpack, rootpackFile };
}

/** Pure checkpoint, signed-note, cosignature and tile arithmetic (src/merkle/checkpoint.ts, tiles.ts), with published vectors. */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ALG_COSIGNATURE_V1,
  ALG_ED25519,
  cosign,
  decodeEntryBundle,
  encodeEntryBundle,
  encodeTileIndex,
  formatCheckpoint,
  formatNote,
  formatVkey,
  parseCheckpoint,
  parseNote,
  parseTilePath,
  parseVkey,
  signNoteText,
  tilePath,
  tileWithin,
  toCosignature,
  verifyCosignature,
  verifyNoteSignature,
} from '../src/merkle';

const ed = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, raw: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url') };
};

describe('C2SP signed note', () => {
  it('verifies the golang.org/x/mod/sumdb/note documentation example', () => {
    const key = parseVkey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
    const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const note = parseNote(`${text}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`);
    expect(note.text).toBe(text);
    expect(verifyNoteSignature(note, key)).toBe(true);
    expect(verifyNoteSignature({ ...note, text: text.replace('answer', 'Answer') }, key)).toBe(false);
  });

  it('rejects vkeys whose key id does not match, and malformed notes', () => {
    expect(() => parseVkey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')).toThrow(/does not match/);
    expect(() => parseVkey('a b+c74f20a3+AA==')).toThrow();
    expect(() => parseNote('text\n')).toThrow(/blank line/);
    expect(() => parseNote('text\n\n— name notbase64!\n')).toThrow();
    expect(() => parseNote('te\x01xt\n\n— n AAAAAAA=\n')).toThrow(/control/);
  });

  it('signs a checkpoint that round-trips and verifies only under its own key', async () => {
    const k = ed();
    const root = randomBytes(32);
    const text = formatCheckpoint({ origin: 'example.com/log', size: 12345, rootHash: root, extensions: [] });
    expect(text).toBe(`example.com/log\n12345\n${root.toString('base64')}\n`);
    const sig = await signNoteText(text, { name: 'example.com/log', publicKey: k.raw, sign: async (m) => sign(null, m, k.privateKey) });
    const note = parseNote(formatNote({ text, signatures: [sig] }));
    expect(parseCheckpoint(note.text)).toMatchObject({ origin: 'example.com/log', size: 12345, rootHash: root });
    expect(verifyNoteSignature(note, parseVkey(formatVkey('example.com/log', ALG_ED25519, k.raw)))).toBe(true);
    expect(verifyNoteSignature(note, parseVkey(formatVkey('example.com/log', ALG_ED25519, ed().raw)))).toBe(false);
    expect(() => parseCheckpoint('o\n012\nAAAA\n')).toThrow(/decimal/);
    expect(() => parseCheckpoint(`o\n1\n${root.toString('base64')}`)).toThrow(/newline/);
  });

  it('cosignature/v1: timestamped signature over the checkpoint; another time or text does not verify', () => {
    const w = ed();
    const key = parseVkey(formatVkey('witness.example/w', ALG_COSIGNATURE_V1, w.raw));
    const text = formatCheckpoint({ origin: 'o', size: 1, rootHash: randomBytes(32), extensions: [] });
    const c = toCosignature(cosign(text, { name: 'witness.example/w', privateKey: w.privateKey, timestamp: 1_700_000_000 }))!;
    expect(c.timestamp).toBe(1_700_000_000);
    expect(verifyCosignature(text, c, key)).toBe(true);
    expect(verifyCosignature(text, { ...c, timestamp: c.timestamp + 1 }, key)).toBe(false);
    expect(verifyCosignature(text.replace('\n1\n', '\n2\n'), c, key)).toBe(false);
    // A note key (type 0x01) is not a cosigner key, even with the same public key.
    expect(verifyCosignature(text, c, parseVkey(formatVkey('witness.example/w', ALG_ED25519, w.raw)))).toBe(false);
  });
});

describe('C2SP tlog-tiles paths and bundles', () => {
  it('encodes indices as the spec example and round-trips any index', () => {
    expect(encodeTileIndex(1234067)).toBe('x001/x234/067');
    expect(encodeTileIndex(0)).toBe('000');
    for (let i = 0; i < 200; i++) {
      const t = { kind: 'hash' as const, level: i % 5, index: Math.floor(Math.random() * 1e12), width: 1 + (i % 256) };
      const p = tilePath(t);
      expect(parseTilePath(p.slice('tile/'.length))).toEqual(t);
    }
    expect(parseTilePath('entries/x001/234.p/7')).toEqual({ kind: 'entries', level: 0, index: 1234, width: 7 });
  });

  it('refuses non-canonical paths', () => {
    for (const bad of ['0/01', '0/1000', '0/x000/001', '0/001.p/0', '0/001.p/256', '0/001.p/07', '64/000', 'x/000', '0/001/002'])
      expect(() => parseTilePath(bad), bad).toThrow();
  });

  it('a tile exists only once its nodes are complete', () => {
    const full = { kind: 'hash' as const, level: 0, index: 0, width: 256 };
    expect(tileWithin(full, 255)).toBe(false);
    expect(tileWithin(full, 256)).toBe(true);
    expect(tileWithin({ ...full, index: 1, width: 14 }, 270)).toBe(true);
    expect(tileWithin({ ...full, index: 1, width: 15 }, 270)).toBe(false);
    expect(tileWithin({ ...full, level: 1, width: 1 }, 256)).toBe(true);
    expect(tileWithin({ ...full, level: 1, width: 2 }, 511)).toBe(false);
  });

  it('entry bundles are length-prefixed entries; a truncated bundle is refused', () => {
    const entries = [Buffer.from('a'), Buffer.alloc(0), randomBytes(300)];
    const b = encodeEntryBundle(entries);
    expect(decodeEntryBundle(b)).toEqual(entries);
    expect(() => decodeEntryBundle(b.subarray(0, b.length - 1))).toThrow();
  });
});

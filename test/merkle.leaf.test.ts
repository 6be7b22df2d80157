import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { leafHash } from '../src/merkle/hash';
import { decodeLeaf, encodeLeaf, evidenceLeafHash, type EvidenceLeafInput } from '../src/merkle/leaf';
import { MerkleError } from '../src/merkle/errors';

/** The library's error with this code (the kind of bad input it names). */
const merkleError = (code: string) => expect.objectContaining({ name: MerkleError.name, code });

const entry: EvidenceLeafInput = {
  id: 'sha256:' + 'a'.repeat(64),
  kind: 'sbom',
  subjects: ['sha256:' + 'c'.repeat(64), 'sha256:' + 'b'.repeat(64)],
  tenant: 'acme',
  time: '2024-05-01T12:00:00.000Z',
};

describe('evidence leaf encoding', () => {
  it('is canonical JSON with a version field and sorted subjects', () => {
    expect(encodeLeaf(entry).toString('utf8')).toBe(
      `{"id":"sha256:${'a'.repeat(64)}","kind":"sbom","subjects":["sha256:${'b'.repeat(64)}","sha256:${'c'.repeat(64)}"],"tenant":"acme","time":"2024-05-01T12:00:00.000Z","v":1}`,
    );
  });

  it('does not depend on subject order, duplicates or time spelling', () => {
    const a = encodeLeaf(entry);
    expect(encodeLeaf({ ...entry, subjects: [...entry.subjects].reverse() })).toEqual(a);
    expect(encodeLeaf({ ...entry, subjects: [...entry.subjects, entry.subjects[0]!] })).toEqual(a);
    expect(encodeLeaf({ ...entry, time: '2024-05-01T14:00:00+02:00' })).toEqual(a);
    expect(encodeLeaf({ ...entry, time: new Date('2024-05-01T12:00:00Z') })).toEqual(a);
    expect(evidenceLeafHash(entry)).toEqual(leafHash(a));
  });

  it('round-trips through decode', () => {
    const d = decodeLeaf(encodeLeaf(entry));
    expect(d).toEqual({ ...entry, subjects: [...entry.subjects].sort() });
    expect(encodeLeaf(d)).toEqual(encodeLeaf(entry));
  });

  it('round-trips arbitrary entries (fast-check)', () => {
    const str = fc.string({ minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(
        str,
        str,
        fc.array(str, { maxLength: 6 }),
        str,
        fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }),
        (id, kind, subjects, tenant, time) => {
          const bytes = encodeLeaf({ id, kind, subjects, tenant, time });
          const back = decodeLeaf(bytes);
          expect(encodeLeaf(back)).toEqual(bytes);
          expect(back.subjects).toEqual([...new Set(subjects)].sort());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects invalid entries', () => {
    expect(() => encodeLeaf({ ...entry, id: '' })).toThrow(merkleError('BAD_LEAF'));
    expect(() => encodeLeaf({ ...entry, subjects: [''] })).toThrow(merkleError('BAD_LEAF'));
    expect(() => encodeLeaf({ ...entry, subjects: 'x' as unknown as string[] })).toThrow(merkleError('BAD_LEAF'));
    expect(() => encodeLeaf({ ...entry, time: 'yesterday' })).toThrow(merkleError('BAD_LEAF'));
    expect(() => encodeLeaf({ ...entry, tenant: 7 as unknown as string })).toThrow(merkleError('BAD_LEAF'));
  });

  it('decode accepts only the exact canonical bytes', () => {
    const good = encodeLeaf(entry).toString('utf8');
    const bad = [
      good.replace('{', '{ '), // whitespace
      good.replace('"v":1', '"v":2'), // unknown version
      good.replace('"v":1', '"v":1,"x":1').replace('}', '}'), // extra field (non-canonical position too)
      good.replace('"tenant":"acme"', '"tenant":"acme","zzz":true'),
      good.replace('.000Z', 'Z'), // non-normal time
      JSON.stringify({ ...JSON.parse(good), subjects: [...JSON.parse(good).subjects].reverse() }), // unsorted
      '[]',
      'not json',
    ];
    for (const b of bad) expect(() => decodeLeaf(Buffer.from(b, 'utf8')), b).toThrow(merkleError('BAD_LEAF'));
    // Invalid UTF-8 inside a string must not decode to something that re-encodes differently.
    const raw = Buffer.from(good.replace('acme', 'acm\u00e9'), 'utf8');
    const i = raw.indexOf(0xc3);
    raw[i + 1] = 0x28; // break the 2-byte sequence
    expect(() => decodeLeaf(raw)).toThrow(merkleError('BAD_LEAF'));
  });
});

import { createHash } from 'node:crypto';

/**
 * Canonical JSON (RFC 8785 / JCS subset): object keys sorted by UTF-16 code units,
 * no insignificant whitespace, numbers as ECMAScript serialises them. Used wherever a
 * digest or signature is taken over JSON, so equal values always give equal bytes.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('canonical JSON cannot encode non-finite numbers');
    return JSON.stringify(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') return canonicalJson((obj as { toJSON: () => unknown }).toJSON());
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  throw new Error(`canonical JSON cannot encode ${typeof value}`);
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `sha256:<hex>` digest string, the id form used for every evidence item. */
export function sha256Digest(data: string | Uint8Array): string {
  return `sha256:${sha256Hex(data)}`;
}

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Canonical JSON: the one byte form stella signs and digests JSON in. */
/**
 * Canonical JSON (RFC 8785 / JCS subset): object keys sorted by UTF-16 code units,
 * no insignificant whitespace, numbers as ECMAScript serialises them. Used wherever a
 * digest or signature is taken over JSON, so equal values always give equal bytes.
 */
export function canonicalJson(value: unknown): string {
  // One accumulating string (V8 ropes) instead of a map/join per level: the SBOM of a large
  // image is a megabyte of JSON canonicalised on every scan.
  const out = { s: '' };
  writeCanonical(value, out);
  return out.s;
}

function writeCanonical(value: unknown, out: { s: string }): void {
  switch (typeof value) {
    case 'string':
      out.s += JSON.stringify(value);
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new Error('canonical JSON cannot encode non-finite numbers');
      out.s += JSON.stringify(value);
      return;
    case 'boolean':
      out.s += value ? 'true' : 'false';
      return;
    case 'object': {
      if (value === null) {
        out.s += 'null';
        return;
      }
      if (Array.isArray(value)) {
        out.s += '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.s += ',';
          const v: unknown = value[i];
          writeCanonical(v === undefined ? null : v, out);
        }
        out.s += ']';
        return;
      }
      const obj = value as Record<string, unknown>;
      if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
        writeCanonical((obj as { toJSON: () => unknown }).toJSON(), out);
        return;
      }
      out.s += '{';
      let first = true;
      for (const k of Object.keys(obj).sort()) {
        const v = obj[k];
        if (v === undefined) continue;
        if (!first) out.s += ',';
        first = false;
        out.s += JSON.stringify(k);
        out.s += ':';
        writeCanonical(v, out);
      }
      out.s += '}';
      return;
    }
  }
  throw new Error(`canonical JSON cannot encode ${typeof value}`);
}

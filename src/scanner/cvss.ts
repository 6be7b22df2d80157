/**
 * CVSS base scores from vector strings, to bucket advisories that carry a vector but
 * no textual severity. v3.0/v3.1 per the FIRST specification (incl. the v3.1 Roundup
 * that avoids floating-point artefacts) and v2 for old records. v4 needs the
 * MacroVector lookup tables and is not scored here.
 */

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'none' | 'unknown';

function metrics(parts: string[], required: string[], what: string): Record<string, string> {
  const m: Record<string, string> = {};
  for (const p of parts) {
    const [k, v, extra] = p.split(':');
    if (!k || v === undefined || extra !== undefined) throw new Error(`malformed ${what} vector component ${JSON.stringify(p)}`);
    if (k in m) throw new Error(`duplicate ${what} metric ${k}`);
    m[k] = v;
  }
  for (const r of required) if (!(r in m)) throw new Error(`${what} vector lacks ${r}`);
  return m;
}

function pick(table: Record<string, number>, v: string | undefined, name: string): number {
  const x = v === undefined ? undefined : table[v];
  if (x === undefined) throw new Error(`bad value ${JSON.stringify(v)} for CVSS metric ${name}`);
  return x;
}

/** CVSS v3.1 Roundup: smallest one-decimal number >= x, computed on integers. */
function roundup31(x: number): number {
  const i = Math.round(x * 100000);
  return i % 10000 === 0 ? i / 100000 : (Math.floor(i / 10000) + 1) / 10;
}

export function cvss3BaseScore(vector: string): number {
  const parts = vector.trim().split('/');
  const head = parts.shift();
  if (head !== 'CVSS:3.0' && head !== 'CVSS:3.1') throw new Error(`not a CVSS v3 vector: ${vector}`);
  const m = metrics(parts, ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'], 'CVSS v3');
  const changed = pick({ U: 0, C: 1 }, m.S, 'S') === 1;
  const av = pick({ N: 0.85, A: 0.62, L: 0.55, P: 0.2 }, m.AV, 'AV');
  const ac = pick({ L: 0.77, H: 0.44 }, m.AC, 'AC');
  const pr = pick(changed ? { N: 0.85, L: 0.68, H: 0.5 } : { N: 0.85, L: 0.62, H: 0.27 }, m.PR, 'PR');
  const ui = pick({ N: 0.85, R: 0.62 }, m.UI, 'UI');
  const cia = { H: 0.56, L: 0.22, N: 0 };
  const c = pick(cia, m.C, 'C');
  const i = pick(cia, m.I, 'I');
  const a = pick(cia, m.A, 'A');
  const iss = 1 - (1 - c) * (1 - i) * (1 - a);
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 : 6.42 * iss;
  const exploitability = 8.22 * av * ac * pr * ui;
  if (impact <= 0) return 0;
  const round = head === 'CVSS:3.1' ? roundup31 : (x: number) => Math.ceil(x * 10) / 10;
  return changed ? round(Math.min(1.08 * (impact + exploitability), 10)) : round(Math.min(impact + exploitability, 10));
}

export function cvss2BaseScore(vector: string): number {
  const v = vector
    .trim()
    .replace(/^\(|\)$/g, '')
    .replace(/^CVSS:2\.0\//, '');
  const m = metrics(v.split('/'), ['AV', 'AC', 'Au', 'C', 'I', 'A'], 'CVSS v2');
  const av = pick({ L: 0.395, A: 0.646, N: 1.0 }, m.AV, 'AV');
  const ac = pick({ H: 0.35, M: 0.61, L: 0.71 }, m.AC, 'AC');
  const au = pick({ M: 0.45, S: 0.56, N: 0.704 }, m.Au, 'Au');
  const cia = { N: 0, P: 0.275, C: 0.66 };
  const c = pick(cia, m.C, 'C');
  const i = pick(cia, m.I, 'I');
  const a = pick(cia, m.A, 'A');
  const impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a));
  const exploitability = 20 * av * ac * au;
  const f = impact === 0 ? 0 : 1.176;
  return Math.round((0.6 * impact + 0.4 * exploitability - 1.5) * f * 10) / 10;
}

/** CVSS v3 qualitative rating scale. */
export function bucketCvss3(score: number): Severity {
  if (score === 0) return 'none';
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  if (score < 9) return 'high';
  return 'critical';
}

/** CVSS v2 has no "critical" or "none" band (NVD convention). */
export function bucketCvss2(score: number): Severity {
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  return 'high';
}

/** Map a textual severity (GHSA "MODERATE", Ubuntu "negligible", ...) to our scale. */
export function normaliseSeverityText(s: unknown): Severity | undefined {
  if (typeof s !== 'string') return undefined;
  switch (s.trim().toLowerCase()) {
    case 'critical':
      return 'critical';
    case 'high':
    case 'important':
      return 'high';
    case 'moderate':
    case 'medium':
      return 'medium';
    case 'low':
    case 'negligible':
      return 'low';
    case 'none':
      return 'none';
    default:
      return undefined;
  }
}

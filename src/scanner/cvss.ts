/**
 * CVSS base scores from vector strings, to bucket advisories that carry a vector but no
 * textual severity. Scoring is done by ae-cvss-calculator (metaeffekt's implementation of
 * the FIRST specifications: v2, v3.0, v3.1 with its Roundup, and v4.0 with the MacroVector
 * tables). The library scores whatever it is given, so vectors are checked here first: a
 * known prefix, every mandatory base metric present once with a value the specification
 * allows; anything else throws and the caller ignores that vector.
 */
import cvssLib from 'ae-cvss-calculator';

const { Cvss2, Cvss3P0, Cvss3P1, Cvss4P0 } = cvssLib as unknown as typeof import('ae-cvss-calculator');

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'none' | 'unknown';
export type CvssVersion = '2.0' | '3.0' | '3.1' | '4.0';

type Allowed = Record<string, readonly string[]>;

const V2_BASE: Allowed = { AV: ['L', 'A', 'N'], AC: ['H', 'M', 'L'], Au: ['M', 'S', 'N'], C: ['N', 'P', 'C'], I: ['N', 'P', 'C'], A: ['N', 'P', 'C'] };
const V3_BASE: Allowed = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'R'],
  S: ['U', 'C'],
  C: ['H', 'L', 'N'],
  I: ['H', 'L', 'N'],
  A: ['H', 'L', 'N'],
};
const V4_BASE: Allowed = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  AT: ['N', 'P'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'P', 'A'],
  VC: ['H', 'L', 'N'],
  VI: ['H', 'L', 'N'],
  VA: ['H', 'L', 'N'],
  SC: ['H', 'L', 'N'],
  SI: ['H', 'L', 'N'],
  SA: ['H', 'L', 'N'],
};

/** Check the base metrics of a vector's metric list (without the "CVSS:x.y" prefix). */
function checkMetrics(parts: readonly string[], base: Allowed, what: string): void {
  const seen = new Set<string>();
  for (const p of parts) {
    const [k, v, extra] = p.split(':');
    if (!k || !v || extra !== undefined) throw new Error(`malformed ${what} vector component ${JSON.stringify(p)}`);
    if (seen.has(k)) throw new Error(`duplicate ${what} metric ${k}`);
    seen.add(k);
    const allowed = base[k];
    if (allowed && !allowed.includes(v)) throw new Error(`bad value ${JSON.stringify(v)} for ${what} metric ${k}`);
  }
  for (const k of Object.keys(base)) if (!seen.has(k)) throw new Error(`${what} vector lacks ${k}`);
}

/** Which CVSS version a vector string is, checked; throws when it is not a well-formed vector. */
export function cvssVersion(vector: string): CvssVersion {
  const v = vector.trim();
  const parts = v.split('/');
  const head = parts[0];
  if (head === 'CVSS:4.0') {
    checkMetrics(parts.slice(1), V4_BASE, 'CVSS v4.0');
    return '4.0';
  }
  if (head === 'CVSS:3.1' || head === 'CVSS:3.0') {
    checkMetrics(parts.slice(1), V3_BASE, `CVSS v${head.slice(5)}`);
    return head === 'CVSS:3.1' ? '3.1' : '3.0';
  }
  const v2 = v.replace(/^\(|\)$/g, '').replace(/^CVSS:2\.0\//, '');
  checkMetrics(v2.split('/'), V2_BASE, 'CVSS v2');
  return '2.0';
}

function score(vector: string, version: CvssVersion): number {
  const v = vector.trim();
  const s =
    version === '4.0'
      ? new Cvss4P0(v).calculateScores().base
      : version === '3.1'
        ? new Cvss3P1(v).calculateScores().base
        : version === '3.0'
          ? new Cvss3P0(v).calculateScores().base
          : new Cvss2(v.replace(/^\(|\)$/g, '').replace(/^CVSS:2\.0\//, '')).calculateScores().base;
  if (typeof s !== 'number' || !Number.isFinite(s)) throw new Error(`CVSS v${version} vector ${v} has no base score`);
  return s;
}

export function cvss3BaseScore(vector: string): number {
  const version = cvssVersion(vector);
  if (version !== '3.0' && version !== '3.1') throw new Error(`not a CVSS v3 vector: ${vector}`);
  return score(vector, version);
}

export function cvss4BaseScore(vector: string): number {
  if (cvssVersion(vector) !== '4.0') throw new Error(`not a CVSS v4.0 vector: ${vector}`);
  return score(vector, '4.0');
}

export function cvss2BaseScore(vector: string): number {
  if (cvssVersion(vector) !== '2.0') throw new Error(`not a CVSS v2 vector: ${vector}`);
  return score(vector, '2.0');
}

/** CVSS v3 (and v4.0, which uses the same bands) qualitative rating scale. */
export function bucketCvss3(score: number): Severity {
  if (score === 0) return 'none';
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  if (score < 9) return 'high';
  return 'critical';
}

export const bucketCvss4 = bucketCvss3;

/** CVSS v2 has no "critical" or "none" band (NVD convention). */
export function bucketCvss2(score: number): Severity {
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  return 'high';
}

export interface CvssRating {
  version: CvssVersion;
  score: number;
  vector: string;
  severity: Severity;
}

/** Score and rate one vector of any version; throws when it is malformed. */
export function rateCvss(vector: string): CvssRating {
  const version = cvssVersion(vector);
  const s = score(vector, version);
  return { version, score: s, vector: vector.trim(), severity: version === '2.0' ? bucketCvss2(s) : bucketCvss3(s) };
}

/**
 * The rating to go by among an advisory's severity entries (OSV `severity[]`: type
 * CVSS_V4 / CVSS_V3 / CVSS_V2 and a vector): the newest CVSS version present wins (v4.0,
 * else v3.x, else v2), and within it the highest score. Malformed vectors are skipped.
 */
export function preferredCvss(entries: ReadonlyArray<{ type?: string; score?: string }>): CvssRating | undefined {
  for (const kind of ['CVSS_V4', 'CVSS_V3', 'CVSS_V2'] as const) {
    let best: CvssRating | undefined;
    for (const e of entries) {
      if (e.type !== kind || typeof e.score !== 'string') continue;
      try {
        const r = rateCvss(e.score);
        if (kind === 'CVSS_V4' ? r.version !== '4.0' : kind === 'CVSS_V3' ? !r.version.startsWith('3') : r.version !== '2.0') continue;
        if (!best || r.score > best.score) best = r;
      } catch {
        // A malformed vector is ignored rather than failing the scan.
      }
    }
    if (best) return best;
  }
  return undefined;
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

/**
 * VEX (Vulnerability Exploitability eXchange), pure: parse OpenVEX (https://openvex.dev, v0.0.x
 * and v0.2.0) and CycloneDX VEX (`vulnerabilities[].analysis`) into one statement shape, and
 * apply statements to findings.
 *
 * - `not_affected` with a justification (or an impact statement) suppresses the finding;
 *   without one it only annotates (OpenVEX requires one, so such a statement is not trusted).
 * - `fixed` suppresses the finding when the statement names the installed version (a product
 *   purl with that version) or the image itself; otherwise it annotates.
 * - `affected` and `under_investigation` annotate.
 * The latest applicable statement (by timestamp, then document order) decides; every
 * applicable statement is recorded on the finding.
 */
import { ScannerError } from './errors';

export type VexStatus = 'not_affected' | 'affected' | 'fixed' | 'under_investigation';
export const VEX_STATUSES: readonly VexStatus[] = ['not_affected', 'affected', 'fixed', 'under_investigation'];

export class VexError extends ScannerError {
  constructor(message: string) {
    super('FEED', message, 'BAD_INPUT');
  }
}

/** Where a statement came from (filled in by the caller: the evidence item, its signer). */
export interface VexSource {
  evidenceId?: string;
  signer?: string | null;
}

export interface VexStatement {
  format: 'openvex' | 'cyclonedx';
  vulnerability: string;
  aliases: string[];
  /** Product identifiers (purls, image references or digests); subcomponents are package purls. Empty: every product. */
  products: string[];
  subcomponents: string[];
  status: VexStatus;
  justification?: string;
  impactStatement?: string;
  actionStatement?: string;
  timestamp?: string;
  source?: VexSource;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length ? v : undefined);
const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Is this JSON an OpenVEX document or a CycloneDX BOM with VEX analysis? */
export function vexFormatOf(doc: unknown): 'openvex' | 'cyclonedx' | null {
  const o = obj(doc);
  if (!o) return null;
  if (typeof o['@context'] === 'string' && o['@context'].startsWith('https://openvex.dev/ns') && Array.isArray(o.statements)) return 'openvex';
  if (o.bomFormat === 'CycloneDX' && Array.isArray(o.vulnerabilities)) return 'cyclonedx';
  return null;
}

/** Parse an OpenVEX or CycloneDX VEX document. Throws VexError when it is neither. */
export function parseVex(doc: unknown, source?: VexSource): VexStatement[] {
  const format = vexFormatOf(doc);
  if (format === 'openvex') return parseOpenVex(doc as Record<string, unknown>, source);
  if (format === 'cyclonedx') return parseCycloneDxVex(doc as Record<string, unknown>, source);
  throw new VexError('not a VEX document: expected OpenVEX (@context https://openvex.dev/ns…, statements[]) or CycloneDX with vulnerabilities[]');
}

function parseOpenVex(doc: Record<string, unknown>, source?: VexSource): VexStatement[] {
  const docTime = str(doc.timestamp) ?? str(doc.last_updated);
  return arr(doc.statements).map((raw, i) => {
    const s = obj(raw) ?? {};
    const v = s.vulnerability;
    const vo = obj(v);
    const vulnerability = str(v) ?? str(vo?.name) ?? str(vo?.['@id']);
    if (!vulnerability) throw new VexError(`OpenVEX statement ${i}: no vulnerability name`);
    const status = str(s.status);
    if (!status || !VEX_STATUSES.includes(status as VexStatus))
      throw new VexError(`OpenVEX statement ${i} (${vulnerability}): unknown status ${JSON.stringify(s.status)}`);
    const products: string[] = [];
    const subcomponents: string[] = [];
    for (const p of arr(s.products)) {
      const po = obj(p);
      const id = str(p) ?? str(po?.['@id']) ?? str(obj(po?.identifiers)?.purl);
      if (id) products.push(id);
      for (const sc of arr(po?.subcomponents)) {
        const sid = str(sc) ?? str(obj(sc)?.['@id']) ?? str(obj(obj(sc)?.identifiers)?.purl);
        if (sid) subcomponents.push(sid);
      }
    }
    // v0.0.1 put subcomponents on the statement.
    for (const sc of arr(s.subcomponents)) {
      const sid = str(sc) ?? str(obj(sc)?.['@id']);
      if (sid) subcomponents.push(sid);
    }
    const aliases = arr(vo?.aliases).filter((a): a is string => typeof a === 'string');
    return {
      format: 'openvex' as const,
      vulnerability,
      aliases,
      products,
      subcomponents,
      status: status as VexStatus,
      ...(str(s.justification) ? { justification: str(s.justification) } : {}),
      ...(str(s.impact_statement) ? { impactStatement: str(s.impact_statement) } : {}),
      ...(str(s.action_statement) ? { actionStatement: str(s.action_statement) } : {}),
      ...((str(s.timestamp) ?? docTime) ? { timestamp: str(s.timestamp) ?? docTime } : {}),
      ...(source ? { source } : {}),
    };
  });
}

const CDX_STATE: Record<string, VexStatus> = {
  not_affected: 'not_affected',
  false_positive: 'not_affected',
  resolved: 'fixed',
  resolved_with_pedigree: 'fixed',
  exploitable: 'affected',
  in_triage: 'under_investigation',
};

function parseCycloneDxVex(doc: Record<string, unknown>, source?: VexSource): VexStatement[] {
  // affects[].ref names a bom-ref; resolve it to the component's purl when the BOM lists it.
  const refs = new Map<string, string>();
  const walk = (cs: unknown) => {
    for (const c of arr(cs)) {
      const co = obj(c);
      const ref = str(co?.['bom-ref']);
      const purl = str(co?.purl);
      if (ref && purl) refs.set(ref, purl);
      walk(co?.components);
    }
  };
  walk(doc.components);
  const meta = obj(obj(doc.metadata)?.component);
  if (str(meta?.['bom-ref']) && str(meta?.purl)) refs.set(str(meta?.['bom-ref'])!, str(meta?.purl)!);
  const docTime = str(obj(doc.metadata)?.timestamp);
  const out: VexStatement[] = [];
  arr(doc.vulnerabilities).forEach((raw, i) => {
    const v = obj(raw) ?? {};
    const analysis = obj(v.analysis);
    if (!analysis) return; // a vulnerability without analysis is a finding, not a VEX statement
    const vulnerability = str(v.id);
    if (!vulnerability) throw new VexError(`CycloneDX vulnerability ${i}: no id`);
    const state = str(analysis.state);
    const status = state ? CDX_STATE[state] : undefined;
    if (!status) throw new VexError(`CycloneDX vulnerability ${i} (${vulnerability}): unknown analysis.state ${JSON.stringify(analysis.state)}`);
    const subcomponents = arr(v.affects)
      .map((a) => str(obj(a)?.ref))
      .filter((r): r is string => !!r)
      .map((r) => refs.get(r) ?? r);
    const aliases = arr(v.references)
      .map((r) => str(obj(r)?.id))
      .filter((r): r is string => !!r);
    const response = arr(analysis.response).filter((x): x is string => typeof x === 'string');
    out.push({
      format: 'cyclonedx',
      vulnerability,
      aliases,
      products: [],
      subcomponents,
      status,
      ...(str(analysis.justification) ? { justification: str(analysis.justification) } : state === 'false_positive' ? { justification: 'false_positive' } : {}),
      ...(str(analysis.detail) ? { impactStatement: str(analysis.detail) } : {}),
      ...(response.length ? { actionStatement: response.join(', ') } : {}),
      ...((str(analysis.lastUpdated) ?? str(analysis.firstIssued) ?? docTime)
        ? { timestamp: str(analysis.lastUpdated) ?? str(analysis.firstIssued) ?? docTime }
        : {}),
      ...(source ? { source } : {}),
    });
  });
  return out;
}

// ---------------------------------------------------------------------------
// Matching

interface PurlKey {
  type: string;
  namespace: string;
  name: string;
  version?: string;
}

/** type/namespace/name/version of a purl, percent-decoded; qualifiers and subpath dropped. */
export function purlKey(purl: string): PurlKey | null {
  const m = /^pkg:([a-zA-Z][a-zA-Z0-9.+-]*)\/([^?#]+)/.exec(purl.trim());
  if (!m) return null;
  let path = m[2]!;
  let version: string | undefined;
  const at = path.lastIndexOf('@');
  if (at > 0) {
    version = path.slice(at + 1);
    path = path.slice(0, at);
  }
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const parts = path.split('/').filter(Boolean).map(dec);
  const name = parts.pop() ?? '';
  const type = m[1]!.toLowerCase();
  const lower = ['deb', 'apk', 'npm', 'pypi', 'rpm', 'gem', 'golang', 'cargo'].includes(type);
  const norm = (s: string) => (lower ? s.toLowerCase() : s);
  return {
    type,
    namespace: norm(parts.join('/')),
    name: type === 'pypi' ? name.toLowerCase().replace(/[-_.]+/g, '-') : norm(name),
    ...(version ? { version: dec(version) } : {}),
  };
}

/** Does a statement's purl name this package (any version when the statement's purl has none)? */
export function purlMatches(statementPurl: string, findingPurl: string): { match: boolean; exactVersion: boolean } {
  const a = purlKey(statementPurl);
  const b = purlKey(findingPurl);
  if (!a || !b || a.type !== b.type || a.name !== b.name) return { match: false, exactVersion: false };
  // An OpenVEX purl often omits the distro namespace; compare it only when both give one.
  if (a.namespace && b.namespace && a.namespace !== b.namespace) return { match: false, exactVersion: false };
  if (a.version === undefined) return { match: true, exactVersion: false };
  return a.version === b.version ? { match: true, exactVersion: true } : { match: false, exactVersion: false };
}

/** The finding fields VEX needs. */
export interface VexFinding {
  id: string;
  aliases?: readonly string[];
  /** The package purl; findings without one can be matched only by image-wide statements. */
  purl?: string;
}

/** The artifact the findings belong to: its digest and any names (image references, purls). */
export interface VexArtifact {
  digest: string;
  names?: readonly string[];
}

/** Does a product identifier name the artifact (a digest, an image reference by digest, a pkg:oci purl with that digest)? */
function namesArtifact(product: string, artifact: VexArtifact): boolean {
  const hex = artifact.digest.replace(/^sha256:/, '');
  if (product.includes(hex)) return true;
  return (artifact.names ?? []).includes(product);
}

export interface AppliedVex {
  statement: VexStatement;
  /** Whether this statement removes the finding from the counts. */
  suppresses: boolean;
  /** Why it does or does not suppress. */
  effect: string;
}

export interface VexOutcome<F extends VexFinding> {
  finding: F;
  /** Every statement about this finding, oldest first; the last one decided. */
  statements: AppliedVex[];
  /** The deciding statement's status, if any statement applies. */
  status?: VexStatus;
  suppressed: boolean;
}

const ids = (f: VexFinding) => new Set([f.id, ...(f.aliases ?? [])]);

/** Which statements are about this finding, and what each one does. */
export function statementsFor(finding: VexFinding, statements: readonly VexStatement[], artifact: VexArtifact): AppliedVex[] {
  const names = ids(finding);
  const out: AppliedVex[] = [];
  for (const s of statements) {
    if (!names.has(s.vulnerability) && !s.aliases.some((a) => names.has(a))) continue;
    let hit: { match: boolean; exactVersion: boolean; image: boolean } | undefined;
    const purls = [...s.subcomponents, ...s.products.filter((p) => p.startsWith('pkg:') && !p.startsWith('pkg:oci/'))];
    if (finding.purl) {
      for (const p of purls) {
        const m = purlMatches(p, finding.purl);
        if (m.match && (!hit || m.exactVersion)) hit = { ...m, image: false };
      }
    }
    // A statement about the image itself (no package named) covers every package in it.
    const imageWide = s.subcomponents.length === 0 && (s.products.length === 0 || s.products.some((p) => namesArtifact(p, artifact)));
    if (!hit && imageWide && purls.length === 0) hit = { match: true, exactVersion: false, image: true };
    if (!hit) continue;
    out.push({ statement: s, ...effectOf(s, hit) });
  }
  return out.sort((a, b) => (a.statement.timestamp ?? '').localeCompare(b.statement.timestamp ?? ''));
}

function effectOf(s: VexStatement, hit: { exactVersion: boolean; image: boolean }): { suppresses: boolean; effect: string } {
  switch (s.status) {
    case 'not_affected':
      if (s.justification || s.impactStatement) return { suppresses: true, effect: `not affected (${s.justification ?? s.impactStatement})` };
      return { suppresses: false, effect: 'not_affected without a justification or impact statement: not applied' };
    case 'fixed':
      if (hit.exactVersion || hit.image) return { suppresses: true, effect: hit.image ? 'fixed in this image' : 'fixed in the installed version' };
      return { suppresses: false, effect: 'fixed, but the statement does not name the installed version: not applied' };
    case 'affected':
      return { suppresses: false, effect: `affected${s.actionStatement ? ` (${s.actionStatement})` : ''}` };
    case 'under_investigation':
      return { suppresses: false, effect: 'under investigation' };
  }
}

/** Apply statements to findings; the latest applicable statement decides whether a finding is suppressed. */
export function applyVex<F extends VexFinding>(findings: readonly F[], statements: readonly VexStatement[], artifact: VexArtifact): VexOutcome<F>[] {
  return findings.map((finding) => {
    const applied = statementsFor(finding, statements, artifact);
    const last = applied[applied.length - 1];
    return { finding, statements: applied, ...(last ? { status: last.statement.status } : {}), suppressed: last?.suppresses ?? false };
  });
}

import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import yauzl from 'yauzl';
import { z } from 'zod';
import { canonicalJson } from '../lib/canonical';
import { walkFiles, type WalkedFile } from '../lib/walk';
import { normaliseSeverityText, preferredCvss, type Severity } from './cvss';
import type { Distro, Ecosystem, Package } from './detectors/types';
import { FeedError, ScanLimitError } from './errors';
import { COMPARATORS, normalizePypiName, type VersionComparator } from './versions/index';

/**
 * Offline advisory database from OSV records (https://ossf.github.io/osv-schema/)
 * and matching of detected packages against it.
 */

// ---------------------------------------------------------------------------
// Records

const EventSchema = z.looseObject({
  introduced: z.string().optional(),
  fixed: z.string().optional(),
  last_affected: z.string().optional(),
  limit: z.string().optional(),
});
const RangeSchema = z.looseObject({ type: z.string(), repo: z.string().optional(), events: z.array(EventSchema) });
const SeveritySchema = z.looseObject({ type: z.string(), score: z.string() });
const AffectedSchema = z.looseObject({
  package: z.looseObject({ ecosystem: z.string(), name: z.string(), purl: z.string().optional() }).optional(),
  ranges: z.array(RangeSchema).optional(),
  versions: z.array(z.string()).optional(),
  severity: z.array(SeveritySchema).optional(),
  database_specific: z.unknown().optional(),
  ecosystem_specific: z.unknown().optional(),
});
export const OsvRecordSchema = z.looseObject({
  id: z.string().min(1),
  modified: z.string().optional(),
  published: z.string().optional(),
  withdrawn: z.string().optional(),
  aliases: z.array(z.string()).optional(),
  summary: z.string().optional(),
  details: z.string().optional(),
  severity: z.array(SeveritySchema).optional(),
  affected: z.array(AffectedSchema).optional(),
  database_specific: z.unknown().optional(),
});

export type OsvRecord = z.infer<typeof OsvRecordSchema>;
export type OsvAffected = z.infer<typeof AffectedSchema>;
export type OsvRange = z.infer<typeof RangeSchema>;

export interface Feed {
  /** Records sorted by id, one per id. */
  records: readonly OsvRecord[];
  /** sha256 of canonicalJson(records): identifies the advisory data a scan used. */
  digest: string;
  count: number;
  /** Distinct affected[].package.ecosystem values, sorted. */
  ecosystems: string[];
  /** Records dropped because another record with the same id superseded them. */
  superseded: number;
}

export interface LoadFeedOptions {
  /** Largest single JSON file accepted (default 64 MiB). */
  maxFileBytes?: number;
  /** Largest total JSON bytes accepted (default 4 GiB). */
  maxTotalBytes?: number;
}

const cmpStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Build a feed from raw records. Records sharing an id are reduced to one (latest
 * `modified`, then canonical bytes as a deterministic tie-break), so a feed's digest
 * depends only on the set of records, never on file names or order.
 */
export function feedFromRecords(raw: readonly unknown[], source = 'records'): Feed {
  const byId = new Map<string, { rec: OsvRecord; canon: string }>();
  let superseded = 0;
  raw.forEach((r, i) => {
    const parsed = OsvRecordSchema.safeParse(r);
    if (!parsed.success) {
      const id = typeof (r as { id?: unknown })?.id === 'string' ? (r as { id: string }).id : `#${i}`;
      throw new FeedError(
        `${source}: record ${id} is not a valid OSV record: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`,
      );
    }
    // Keep the caller's JSON value (not zod's copy) so the digest covers exactly what was read.
    const rec = r as OsvRecord;
    const canon = canonicalJson(rec);
    const prev = byId.get(rec.id);
    if (!prev) {
      byId.set(rec.id, { rec, canon });
      return;
    }
    if (prev.canon === canon) return; // the same record twice is not a conflict
    superseded++;
    const newer = cmpStr(rec.modified ?? '', prev.rec.modified ?? '') || cmpStr(canon, prev.canon);
    if (newer > 0) byId.set(rec.id, { rec, canon });
  });
  const entries = [...byId.values()].sort((a, b) => cmpStr(a.rec.id, b.rec.id));
  // Hash canonicalJson(records) incrementally: same bytes, without one giant string.
  const h = createHash('sha256');
  h.update('[');
  for (const [i, e] of entries.entries()) h.update(i ? `,${e.canon}` : e.canon);
  h.update(']');
  const ecosystems = new Set<string>();
  for (const e of entries) for (const a of e.rec.affected ?? []) if (a.package?.ecosystem) ecosystems.add(a.package.ecosystem);
  return {
    records: entries.map((e) => e.rec),
    digest: `sha256:${h.digest('hex')}`,
    count: entries.length,
    ecosystems: [...ecosystems].sort(cmpStr),
    superseded,
  };
}

function parseRecords(text: string, where: string): unknown[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FeedError(`${where}: invalid JSON (${(e as Error).message})`);
  }
  const list = Array.isArray(v) ? v : [v];
  for (const r of list) {
    if (typeof r !== 'object' || r === null || typeof (r as { id?: unknown }).id !== 'string') throw new FeedError(`${where}: not an OSV record (no id)`);
  }
  return list;
}

class Budget {
  total = 0;
  constructor(private readonly opts: Required<LoadFeedOptions>) {}
  take(n: number, where: string): void {
    if (n > this.opts.maxFileBytes) throw new ScanLimitError(`${where}: ${n} bytes exceeds the ${this.opts.maxFileBytes}-byte per-file limit`);
    this.total += n;
    if (this.total > this.opts.maxTotalBytes) throw new ScanLimitError(`feed exceeds ${this.opts.maxTotalBytes} bytes in total`);
  }
}

/** Every `*.json` below `root`, in sorted order; symlinks are not followed (a feed directory is data we were handed, not a tree to explore). */
async function readDir(root: string, budget: Budget): Promise<unknown[]> {
  const out: unknown[] = [];
  const files = walkFiles(root);
  for (;;) {
    let next: IteratorResult<WalkedFile>;
    try {
      next = await files.next();
    } catch (e) {
      throw new FeedError(`cannot read feed directory ${root}: ${(e as Error).message}`);
    }
    if (next.done) break;
    const { path } = next.value;
    if (!path.toLowerCase().endsWith('.json')) continue;
    budget.take((await stat(path)).size, path);
    out.push(...parseRecords(await readFile(path, 'utf8'), path));
  }
  return out;
}

function readZip(path: string, budget: Budget): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: true, validateEntrySizes: true, strictFileNames: false }, (err, zip) => {
      if (err || !zip) return reject(new FeedError(`${path}: not a readable zip (${err?.message ?? 'unknown error'})`));
      const out: unknown[] = [];
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        zip.close();
        reject(e instanceof FeedError || e instanceof ScanLimitError ? e : new FeedError(`${path}: ${(e as Error).message}`));
      };
      zip.on('error', fail);
      zip.on('end', () => {
        if (!failed) resolve(out);
      });
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        if (name.endsWith('/') || !name.toLowerCase().endsWith('.json') || name.startsWith('__MACOSX/')) return zip.readEntry();
        const where = `${path}!${name}`;
        try {
          budget.take(entry.uncompressedSize, where);
        } catch (e) {
          return fail(e);
        }
        zip.openReadStream(entry, (e2, rs) => {
          if (e2 || !rs) return fail(e2 ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          rs.on('data', (c: Buffer) => chunks.push(c));
          rs.on('error', fail);
          rs.on('end', () => {
            try {
              out.push(...parseRecords(Buffer.concat(chunks).toString('utf8'), where));
              zip.readEntry();
            } catch (e3) {
              fail(e3);
            }
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** Load OSV records from a directory tree of *.json files, a .zip of them, or a single .json file. */
export async function loadFeed(dirOrZip: string, opts: LoadFeedOptions = {}): Promise<Feed> {
  const budget = new Budget({ maxFileBytes: opts.maxFileBytes ?? 64 << 20, maxTotalBytes: opts.maxTotalBytes ?? 4 * 1024 ** 3 });
  const st = await stat(dirOrZip).catch(() => {
    throw new FeedError(`feed ${dirOrZip} does not exist`);
  });
  let raw: unknown[];
  if (st.isDirectory()) {
    raw = await readDir(dirOrZip, budget);
  } else {
    const fh = await open(dirOrZip, 'r');
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0).finally(() => fh.close());
    if (head.readUInt32LE(0) === 0x04034b50 || head.readUInt32LE(0) === 0x06054b50) {
      raw = await readZip(dirOrZip, budget);
    } else {
      budget.take(st.size, dirOrZip);
      raw = parseRecords(await readFile(dirOrZip, 'utf8'), dirOrZip);
    }
  }
  return feedFromRecords(raw, dirOrZip);
}

// ---------------------------------------------------------------------------
// Range semantics

export type RangeResult = { affected: false } | { affected: true; fixed?: string };

/**
 * Evaluate one SEMVER/ECOSYSTEM range per the OSV spec: events sorted by version
 * ("introduced: 0" first), walk them toggling affected on introduced (v >= x), off on
 * fixed (v >= x) and last_affected (v > x); `limit` events bound the range from above.
 * Throws if a version is not comparable under the scheme.
 */
export function evaluateRange(version: string, range: Pick<OsvRange, 'events'>, cmp: (a: string, b: string) => number): RangeResult {
  const limits = range.events.filter((e) => e.limit !== undefined).map((e) => e.limit!);
  if (limits.length && !limits.some((l) => l === '*' || cmp(version, l) < 0)) return { affected: false };
  const keyed = range.events
    .filter((e) => e.limit === undefined)
    .map((e) => ({ e, v: e.introduced ?? e.fixed ?? e.last_affected }))
    .filter((x): x is { e: (typeof range.events)[number]; v: string } => x.v !== undefined);
  // "introduced: 0" means "from the beginning": it sorts first and needs no comparator.
  const isZero = (k: (typeof keyed)[number]) => k.e.introduced === '0';
  keyed.sort((x, y) => (isZero(x) || isZero(y) ? Number(isZero(y)) - Number(isZero(x)) : cmp(x.v, y.v)));
  let affected = false;
  for (const { e, v } of keyed) {
    if (e.introduced !== undefined) {
      if (v === '0' || cmp(version, v) >= 0) affected = true;
    } else if (e.fixed !== undefined) {
      if (cmp(version, v) >= 0) affected = false;
    } else if (cmp(version, v) > 0) {
      affected = false; // last_affected
    }
  }
  if (!affected) return { affected: false };
  const fixes = keyed.filter((k) => k.e.fixed !== undefined && cmp(k.v, version) > 0).map((k) => k.v);
  fixes.sort(cmp);
  return fixes.length ? { affected: true, fixed: fixes[0]! } : { affected: true };
}

// ---------------------------------------------------------------------------
// Severity

export interface SeverityInfo {
  severity: Severity;
  score?: number;
  vector?: string;
}

/** Textual database severity first (GHSA, Ubuntu), else CVSS (v4.0, else the highest v3.x, else v2). */
export function severityOf(record: OsvRecord, affected?: OsvAffected): SeverityInfo {
  const textSources = [
    (affected?.database_specific as { severity?: unknown } | undefined)?.severity,
    (affected?.ecosystem_specific as { severity?: unknown } | undefined)?.severity,
    (record.database_specific as { severity?: unknown } | undefined)?.severity,
  ];
  const text = textSources.map(normaliseSeverityText).find((s) => s !== undefined);
  const entries = [...(affected?.severity ?? []), ...(record.severity ?? [])];
  // CVSS v4.0 when present, else the highest v3.x, else v2 (malformed vectors are skipped).
  const best = preferredCvss(entries);
  if (text) return { severity: text, ...(best ? { score: best.score, vector: best.vector } : {}) };
  if (best) return { severity: best.severity, score: best.score, vector: best.vector };
  const ubuntu = entries.map((x) => (x.type === 'Ubuntu' ? normaliseSeverityText(x.score) : undefined)).find((s) => s !== undefined);
  return { severity: ubuntu ?? 'unknown' };
}

// ---------------------------------------------------------------------------
// Matching

export interface Finding {
  id: string;
  aliases: string[];
  package: { ecosystem: Ecosystem; name: string; version: string; purl: string };
  installedVersion: string;
  fixedVersion?: string;
  severity: Severity;
  score?: number;
  cvssVector?: string;
  summary: string;
  /** Advisory ecosystem and package name that matched (distro advisories name source packages). */
  advisory: { ecosystem: string; name: string };
}

export const SEVERITY_ORDER: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'none', 'unknown'];

interface Target {
  base: string;
  name: string;
  version: string;
  release: (suffix: string) => boolean;
  scheme: VersionComparator;
}

const any = () => true;

/** A Go toolchain version as semver: go1.21 → 1.21.0, go1.21.5 → 1.21.5, go1.22rc2 → 1.22.0-rc.2. */
export function goToolchainSemver(v: string): string {
  const m = /^(?:go)?(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?$/.exec(v.trim());
  if (!m) return v;
  return `${m[1]}.${m[2]}.${m[3] ?? '0'}${m[4] ? `-${m[4]}.${m[5]}` : ''}`;
}

/** OSV ecosystem (lowercased base) of each RPM distribution's /etc/os-release ID. */
const RPM_ECOSYSTEMS: Record<string, string> = {
  rhel: 'red hat',
  centos: 'red hat',
  rocky: 'rocky linux',
  almalinux: 'almalinux',
  sles: 'suse',
  sled: 'suse',
  sles_sap: 'suse',
  'opensuse-leap': 'opensuse',
  'opensuse-tumbleweed': 'opensuse',
};

/** How a detected package is looked up in OSV: ecosystem base, advisory name, version, release filter. */
function targetFor(pkg: Package, distro: Distro | undefined): Target | undefined {
  switch (pkg.ecosystem) {
    case 'deb': {
      const id = distro?.id === 'ubuntu' || (distro?.id !== 'debian' && distro?.idLike.includes('ubuntu')) ? 'ubuntu' : 'debian';
      const ver = distro?.versionId;
      const release =
        !ver || (distro?.id !== id && !distro?.idLike.includes(id))
          ? any
          : id === 'debian'
            ? (s: string) => s.split(':')[0] === ver.split('.')[0]
            : (s: string) => !s.split(':').includes('Pro') && s.split(':').includes(ver);
      // Debian/Ubuntu advisories are keyed by source package and source version.
      return { base: id, name: pkg.source?.name ?? pkg.name, version: pkg.source?.version ?? pkg.version, release, scheme: COMPARATORS.dpkg };
    }
    case 'apk': {
      const id = distro && ['alpine', 'wolfi', 'chainguard'].includes(distro.id) ? distro.id : 'alpine';
      const mm = id === 'alpine' ? /^(\d+)\.(\d+)/.exec(distro?.versionId ?? '') : null;
      const release = mm ? (s: string) => s === `v${mm[1]}.${mm[2]}` : any;
      return { base: id, name: pkg.source?.name ?? pkg.name, version: pkg.version, release, scheme: COMPARATORS.apk };
    }
    case 'rpm': {
      // OSV names RPM advisories by distribution: "Red Hat:enterprise_linux:9::appstream", "Rocky Linux:9", "AlmaLinux:9", "SUSE:…", "openSUSE:…".
      const id = distro?.id ?? '';
      const like = distro?.idLike ?? [];
      const base = RPM_ECOSYSTEMS[id] ?? (like.includes('rhel') || like.includes('fedora') ? 'red hat' : like.includes('suse') ? 'suse' : 'red hat');
      const major = /^(\d+)/.exec(distro?.versionId ?? '')?.[1];
      const release = !major
        ? any
        : base === 'red hat'
          ? (s: string) => s.split(':').includes(major)
          : base === 'rocky linux' || base === 'almalinux'
            ? (s: string) => s.split('.')[0] === major
            : any;
      return { base, name: pkg.name, version: pkg.version, release, scheme: COMPARATORS.rpm };
    }
    case 'golang':
      // OSV "Go": modules by path (SEMVER ranges, no "v"); the toolchain as "stdlib" (go1.21.5 → 1.21.5).
      return {
        base: 'go',
        name: pkg.name,
        version: pkg.name === 'stdlib' ? goToolchainSemver(pkg.version) : pkg.version,
        release: any,
        scheme: COMPARATORS.semver,
      };
    case 'cargo':
      return { base: 'crates.io', name: pkg.name, version: pkg.version, release: any, scheme: COMPARATORS.semver };
    case 'npm':
      return { base: 'npm', name: pkg.name, version: pkg.version, release: any, scheme: COMPARATORS.semver };
    case 'maven': {
      // OSV names Maven packages groupId:artifactId; the group is the purl's namespace.
      const group = /^pkg:maven\/([^/@?#]+)\//.exec(pkg.purl)?.[1];
      if (!group) return undefined;
      return { base: 'maven', name: `${decodeURIComponent(group)}:${pkg.name}`, version: pkg.version, release: any, scheme: COMPARATORS.maven };
    }
    case 'gem':
      return { base: 'rubygems', name: pkg.name, version: pkg.version, release: any, scheme: COMPARATORS.rubygems };
    case 'nuget':
      // NuGet ids are case-insensitive (advisory names are lowered the same way when the feed is indexed).
      return { base: 'nuget', name: pkg.name.toLowerCase(), version: pkg.version, release: any, scheme: COMPARATORS.nuget };
    case 'composer':
      return { base: 'packagist', name: pkg.name, version: pkg.version, release: any, scheme: COMPARATORS.composer };
    case 'pypi':
      return { base: 'pypi', name: normalizePypiName(pkg.name), version: pkg.version, release: any, scheme: COMPARATORS.pep440 };
  }
}

function splitEcosystem(eco: string): { base: string; suffix: string } {
  const i = eco.indexOf(':');
  return i === -1 ? { base: eco.toLowerCase(), suffix: '' } : { base: eco.slice(0, i).toLowerCase(), suffix: eco.slice(i + 1) };
}

interface IndexEntry {
  record: OsvRecord;
  affected: OsvAffected;
  suffix: string;
}

const indexes = new WeakMap<Feed, Map<string, IndexEntry[]>>();

function indexOf(feed: Feed): Map<string, IndexEntry[]> {
  let idx = indexes.get(feed);
  if (idx) return idx;
  idx = new Map();
  for (const record of feed.records) {
    if (record.withdrawn) continue;
    for (const affected of record.affected ?? []) {
      if (!affected.package) continue;
      const { base, suffix } = splitEcosystem(affected.package.ecosystem);
      const name = base === 'pypi' ? normalizePypiName(affected.package.name) : base === 'nuget' ? affected.package.name.toLowerCase() : affected.package.name;
      const key = `${base}\0${name}`;
      const list = idx.get(key) ?? [];
      list.push({ record, affected, suffix });
      idx.set(key, list);
    }
  }
  indexes.set(feed, idx);
  return idx;
}

function isAffected(version: string, affected: OsvAffected, scheme: VersionComparator): RangeResult {
  let hit: RangeResult = { affected: false };
  const better = (r: RangeResult) => {
    if (!r.affected) return;
    if (!hit.affected) hit = r;
    else if (r.fixed && (!hit.fixed || scheme.compare(r.fixed, hit.fixed) < 0)) hit = r;
  };
  for (const range of affected.ranges ?? []) {
    const cmp = range.type === 'SEMVER' ? COMPARATORS.semver.compare : range.type === 'ECOSYSTEM' ? scheme.compare : undefined;
    if (!cmp) continue; // GIT ranges need commit history
    try {
      better(evaluateRange(version, range, cmp));
    } catch {
      // Versions the scheme cannot parse cannot be placed in the range.
    }
  }
  if (!hit.affected && affected.versions?.length) {
    const eq = (v: string) => {
      try {
        return scheme.compare(version, v) === 0;
      } catch {
        return version === v;
      }
    };
    if (affected.versions.some(eq)) hit = { affected: true };
  }
  return hit;
}

function summaryOf(r: OsvRecord): string {
  if (r.summary) return r.summary;
  const first = (r.details ?? '').split(/\n/)[0]!.trim();
  return first.length > 200 ? `${first.slice(0, 197)}...` : first;
}

/** Match packages against a feed. Output is deterministic: severity, then id, then purl. */
export function matchPackages(packages: readonly Package[], feed: Feed, distro?: Distro): Finding[] {
  const idx = indexOf(feed);
  const found = new Map<string, Finding>();
  for (const pkg of packages) {
    const t = targetFor(pkg, distro);
    if (!t?.scheme.valid(t.version)) continue;
    for (const { record, affected, suffix } of idx.get(`${t.base}\0${t.name}`) ?? []) {
      if (suffix && !t.release(suffix)) continue;
      const r = isAffected(t.version, affected, t.scheme);
      if (!r.affected) continue;
      const key = `${record.id}\0${pkg.purl}`;
      const prev = found.get(key);
      if (prev && (!r.fixed || (prev.fixedVersion && t.scheme.compare(prev.fixedVersion, r.fixed) <= 0))) continue;
      const sev = severityOf(record, affected);
      found.set(key, {
        id: record.id,
        aliases: [...(record.aliases ?? [])].sort(cmpStr),
        package: { ecosystem: pkg.ecosystem, name: pkg.name, version: pkg.version, purl: pkg.purl },
        installedVersion: pkg.version,
        ...(r.fixed ? { fixedVersion: r.fixed } : {}),
        severity: sev.severity,
        ...(sev.score !== undefined ? { score: sev.score } : {}),
        ...(sev.vector ? { cvssVector: sev.vector } : {}),
        summary: summaryOf(record),
        advisory: { ecosystem: affected.package!.ecosystem, name: affected.package!.name },
      });
    }
  }
  return [...found.values()].sort(
    (a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) || cmpStr(a.id, b.id) || cmpStr(a.package.purl, b.package.purl),
  );
}

export type SeverityCounts = Record<Severity, number>;

export function countBySeverity(findings: readonly Finding[]): SeverityCounts {
  const c: SeverityCounts = { critical: 0, high: 0, medium: 0, low: 0, none: 0, unknown: 0 };
  for (const f of findings) c[f.severity]++;
  return c;
}

// ---------------------------------------------------------------------------
// Explaining a match

export type RangeExplanation = {
  type: string;
  events: OsvRange['events'];
  /** Whether this range contains the version (undefined: the scheme cannot place it, e.g. GIT ranges). */
  contains?: boolean;
  fixed?: string;
};

export type MatchExplanation = {
  advisory: { id: string; ecosystem: string; name: string; summary: string; aliases: string[]; modified?: string; published?: string };
  version: string;
  scheme: string;
  ranges: RangeExplanation[];
  /** Versions the advisory lists explicitly, and whether the version is one of them. */
  versions: { listed: number; contains: boolean };
};

const SCHEME_OF: Partial<Record<Ecosystem, keyof typeof COMPARATORS>> = {
  deb: 'dpkg',
  apk: 'apk',
  rpm: 'rpm',
  pypi: 'pep440',
  npm: 'semver',
  maven: 'maven',
  gem: 'rubygems',
  nuget: 'nuget',
  composer: 'composer',
};

/** Which of an advisory's ranges for `advisory` (ecosystem, name) contain `version`: what `stella scan explain` shows. */
export function explainMatch(record: OsvRecord, advisory: { ecosystem: string; name: string }, version: string, pkgEcosystem: Ecosystem): MatchExplanation {
  const scheme = COMPARATORS[SCHEME_OF[pkgEcosystem] ?? 'semver'];
  const ranges: RangeExplanation[] = [];
  let listed = 0;
  let contains = false;
  for (const a of record.affected ?? []) {
    if (a.package?.ecosystem !== advisory.ecosystem || a.package?.name !== advisory.name) continue;
    for (const range of a.ranges ?? []) {
      const cmp = range.type === 'SEMVER' ? COMPARATORS.semver.compare : range.type === 'ECOSYSTEM' ? scheme.compare : undefined;
      let r: RangeResult | undefined;
      try {
        r = cmp ? evaluateRange(version, range, cmp) : undefined;
      } catch {
        r = undefined;
      }
      ranges.push({ type: range.type, events: range.events, ...(r ? { contains: r.affected } : {}), ...(r?.affected && r.fixed ? { fixed: r.fixed } : {}) });
    }
    listed += a.versions?.length ?? 0;
    if (a.versions?.includes(version)) contains = true;
  }
  return {
    advisory: {
      id: record.id,
      ecosystem: advisory.ecosystem,
      name: advisory.name,
      summary: summaryOf(record),
      aliases: [...(record.aliases ?? [])].sort(cmpStr),
      ...(record.modified ? { modified: record.modified } : {}),
      ...(record.published ? { published: record.published } : {}),
    },
    version,
    scheme: scheme.scheme,
    ranges,
    versions: { listed, contains },
  };
}

/**
 * Files examined while their layer streams past (see FileExtractor in layers.ts): executables
 * (Go build info, cargo-auditable crate lists), Java archives and rpm databases. Only the
 * facts drawn from them stay in memory. Executables and archives that yield no package and
 * that no OS package owns are reported as unidentified.
 */
import type { FileExtractor, ImageFilesystem } from '../layers';
import { elfSections, isElf } from './elf';
import { goPackages, parseGoBuildInfo, type GoBuildInfo } from './golang';
import { examineJavaArchive, JAVA_ARCHIVE_RE, javaPackages, type JavaArchiveFacts } from './java';
import { readRpmdb, RPMDB_PATHS, rpmPackages, type RpmHeader } from './rpm';
import { parseDepV0, rustPackages, type AuditableCrate } from './rust';
import type { DetectContext, Detector, Package } from './types';

export type FileFacts =
  | { kind: 'rpmdb'; headers: RpmHeader[]; error?: string }
  | ({ kind: 'java' } & JavaArchiveFacts)
  | { kind: 'go'; info: GoBuildInfo }
  | { kind: 'rust'; crates: AuditableCrate[] }
  | { kind: 'elf'; reason: string };

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const EXECUTABLE = 0o111;

export const fileExtractor: FileExtractor = {
  accepts(path, mode, head) {
    if (RPMDB_PATHS.includes(path)) return true;
    if (JAVA_ARCHIVE_RE.test(path)) return head.subarray(0, 4).equals(ZIP_MAGIC);
    return (mode & EXECUTABLE) !== 0 && isElf(head);
  },
  async extract(path, content): Promise<FileFacts> {
    if (RPMDB_PATHS.includes(path)) {
      try {
        return { kind: 'rpmdb', headers: await readRpmdb(path, content) };
      } catch (e) {
        return { kind: 'rpmdb', headers: [], error: (e as Error).message };
      }
    }
    if (JAVA_ARCHIVE_RE.test(path)) return { kind: 'java', ...(await examineJavaArchive(content, path)) };
    return elfFacts(content);
  },
};

function elfFacts(content: Buffer): FileFacts {
  const sections = elfSections(content);
  // Search the whole file for the magic only when it has no section table to look in.
  const go = sections ? sections.get('.go.buildinfo') : content;
  const buildinfo = go ? parseGoBuildInfo(go) : undefined;
  if (buildinfo === 'legacy') return { kind: 'elf', reason: 'Go binary built before Go 1.18 (no inline module information)' };
  if (buildinfo) return { kind: 'go', info: buildinfo };
  const dep = sections?.get('.dep-v0');
  const crates = dep ? parseDepV0(dep) : undefined;
  if (crates) return { kind: 'rust', crates };
  return { kind: 'elf', reason: dep ? 'unreadable cargo-auditable data' : 'executable with no package metadata' };
}

function factsOf(fs: ImageFilesystem): Array<[string, FileFacts]> {
  return fs.extractedFiles() as Array<[string, FileFacts]>;
}

export const rpmDetector: Detector = {
  name: 'rpm',
  wants: () => false,
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    for (const p of RPMDB_PATHS) {
      const facts = fs.stat(p)?.facts as FileFacts | undefined;
      if (facts?.kind !== 'rpmdb') continue;
      if (facts.error) ctx.warnings.push(`${p}: unreadable rpm database (${facts.error})`);
      // /var/lib/rpm is often a symlink to /usr/lib/sysimage/rpm: one database is the image's.
      else return rpmPackages(facts.headers, p, ctx);
    }
    return [];
  },
};

export const binaryDetector: Detector = {
  name: 'binaries',
  wants: () => false,
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    const out: Package[] = [];
    for (const [path, f] of factsOf(fs)) {
      if (f.kind === 'go') out.push(...goPackages(f.info, path));
      else if (f.kind === 'rust') out.push(...rustPackages(f.crates, path));
      else if (f.kind === 'java') {
        out.push(...javaPackages(f));
        ctx.warnings.push(...f.errors);
      }
    }
    return out;
  },
};

const DPKG_LIST_RE = /^\/var\/lib\/dpkg\/info\/[^/]+\.list$/;
const APK_DBS = ['/lib/apk/db/installed', '/usr/lib/apk/db/installed'];

export function wantsOwnership(path: string): boolean {
  return DPKG_LIST_RE.test(path);
}

/** Paths the OS package managers say they installed (dpkg file lists, apk F:/R:, rpm headers). */
function ownedPaths(fs: ImageFilesystem): Set<string> {
  const owned = new Set<string>();
  for (const p of fs.capturedFiles()) {
    if (DPKG_LIST_RE.test(p)) for (const l of fs.readFile(p)!.toString('utf8').split('\n')) if (l) owned.add(l);
  }
  for (const db of APK_DBS) {
    let dir = '';
    for (const l of fs.readFile(db)?.toString('utf8').split('\n') ?? []) {
      if (l.startsWith('F:')) dir = `/${l.slice(2)}`;
      else if (l.startsWith('R:')) owned.add(`${dir}/${l.slice(2)}`);
    }
  }
  for (const p of RPMDB_PATHS) {
    const f = fs.stat(p)?.facts as FileFacts | undefined;
    if (f?.kind === 'rpmdb') for (const h of f.headers) for (const file of h.files) owned.add(file);
  }
  return owned;
}

/** Executables and archives that yielded no package and belong to no OS package. */
export const unidentifiedDetector: Detector = {
  name: 'unidentified',
  wants: wantsOwnership,
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    const facts = factsOf(fs).filter(([, f]) => f.kind === 'elf' || (f.kind === 'java' && f.unidentified.length > 0));
    if (facts.length === 0) return [];
    const owned = ownedPaths(fs);
    for (const [path, f] of facts) {
      if (owned.has(path) || isOwnedThroughUsrMerge(path, owned)) continue;
      if (f.kind === 'elf') ctx.unidentified.push({ path, kind: 'elf', reason: f.reason });
      else if (f.kind === 'java')
        for (const u of f.unidentified)
          ctx.unidentified.push({ path: u, kind: 'java-archive', reason: 'no Maven metadata, manifest version or versioned file name' });
    }
    return [];
  },
};

/** Merged-/usr images: dpkg lists /bin/ls while the tar holds /usr/bin/ls (or the reverse). */
function isOwnedThroughUsrMerge(path: string, owned: Set<string>): boolean {
  return path.startsWith('/usr/') ? owned.has(path.slice(4)) : owned.has(`/usr${path}`);
}

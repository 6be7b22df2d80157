/**
 * Java archives (jar, war, ear, nested jars as Spring Boot and WAR files carry them): Maven
 * coordinates from META-INF/maven/**\/pom.properties, else the manifest, else the file name.
 * Zip reading is yauzl's; archives are examined in memory while their layer streams past.
 */
import { basename } from 'node:path';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { buildPurl } from '../purl';
import { spdxLicenses } from './licenses';
import type { Package } from './types';

export const JAVA_ARCHIVE_RE = /\.(?:jar|war|ear|par|sar|jpi|hpi|nar|kar)$/i;
const MAX_DEPTH = 4;
const MAX_NESTED_BYTES = 64 << 20;

export interface JavaArtifact {
  groupId?: string;
  artifactId: string;
  version: string;
  /** Path inside the image, `!`-separated through nested archives. */
  location: string;
  licenses?: string[];
  /** Where the identity came from. */
  via: 'pom.properties' | 'manifest' | 'filename';
}

export interface JavaArchiveFacts {
  artifacts: JavaArtifact[];
  /** Nested archives (and the outer one) nothing could be identified in. */
  unidentified: string[];
  errors: string[];
}

function open(buf: Buffer): Promise<ZipFile> {
  return new Promise((res, rej) => yauzl.fromBuffer(buf, { lazyEntries: true, validateEntrySizes: true }, (e, z) => (e ? rej(e) : res(z!))));
}

function readEntry(z: ZipFile, e: Entry, max: number): Promise<Buffer> {
  return new Promise((res, rej) =>
    z.openReadStream(e, (err, s) => {
      if (err || !s) return rej(err ?? new Error('no stream'));
      const chunks: Buffer[] = [];
      let n = 0;
      s.on('data', (c: Buffer) => {
        n += c.length;
        if (n > max) s.destroy(new Error(`entry ${e.fileName} larger than ${max} bytes`));
        else chunks.push(c);
      });
      s.on('error', rej);
      s.on('end', () => res(Buffer.concat(chunks)));
    }),
  );
}

/** Entries we need, read in one walk of the central directory. */
async function wantedEntries(buf: Buffer): Promise<Map<string, Buffer>> {
  const z = await open(buf);
  const out = new Map<string, Buffer>();
  try {
    await new Promise<void>((res, rej) => {
      z.on('error', rej);
      z.on('end', () => res());
      z.on('entry', (e: Entry) => {
        const n = e.fileName;
        const want = n === 'META-INF/MANIFEST.MF' || (n.startsWith('META-INF/maven/') && n.endsWith('/pom.properties')) || JAVA_ARCHIVE_RE.test(n);
        if (!want || n.endsWith('/')) return z.readEntry();
        readEntry(z, e, MAX_NESTED_BYTES).then((b) => {
          out.set(n, b);
          z.readEntry();
        }, rej);
      });
      z.readEntry();
    });
  } finally {
    z.close();
  }
  return out;
}

function properties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([^#!=:\s][^=:]*?)\s*[=:]\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

/** MANIFEST.MF main section (continuation lines start with one space). */
export function parseManifest(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === '') break;
    if (line.startsWith(' ') && last) out[last] += line.slice(1);
    else {
      const i = line.indexOf(':');
      if (i > 0) out[(last = line.slice(0, i).trim())] = line.slice(i + 1).trim();
    }
  }
  return out;
}

/** "commons-lang3-3.14.0.jar" → name and version, when the name ends in a version. */
function fromFileName(path: string): { artifactId: string; version: string } | undefined {
  const m = /^(.+?)-(\d[\w.+-]*)\.[a-z]+$/i.exec(basename(path));
  return m ? { artifactId: m[1]!, version: m[2]! } : undefined;
}

async function examine(buf: Buffer, location: string, depth: number, facts: JavaArchiveFacts): Promise<void> {
  let entries: Map<string, Buffer>;
  try {
    entries = await wantedEntries(buf);
  } catch (e) {
    facts.errors.push(`${location}: unreadable Java archive (${(e as Error).message})`);
    facts.unidentified.push(location);
    return;
  }
  const manifest = entries.has('META-INF/MANIFEST.MF') ? parseManifest(entries.get('META-INF/MANIFEST.MF')!.toString('utf8')) : {};
  const licenses = manifest['Bundle-License'] ? spdxLicenses(manifest['Bundle-License'].split(';')[0]!) : undefined;
  const before = facts.artifacts.length;
  for (const [name, b] of [...entries].sort(([a], [c]) => (a < c ? -1 : 1))) {
    if (!name.endsWith('/pom.properties')) continue;
    const p = properties(b.toString('utf8'));
    if (p.artifactId && p.version)
      facts.artifacts.push({
        ...(p.groupId ? { groupId: p.groupId } : {}),
        artifactId: p.artifactId,
        version: p.version,
        location,
        via: 'pom.properties',
        ...(licenses ? { licenses } : {}),
      });
  }
  if (facts.artifacts.length === before) {
    const title = manifest['Bundle-SymbolicName']?.split(';')[0] ?? manifest['Implementation-Title'];
    const version = manifest['Bundle-Version'] ?? manifest['Implementation-Version'];
    const file = fromFileName(location);
    if (title && version) {
      const dot = title.lastIndexOf('.');
      const groupId = manifest['Implementation-Vendor-Id'] ?? (dot > 0 ? title.slice(0, dot) : undefined);
      const artifactId = file?.artifactId ?? (dot > 0 ? title.slice(dot + 1) : title);
      facts.artifacts.push({ ...(groupId ? { groupId } : {}), artifactId, version, location, via: 'manifest', ...(licenses ? { licenses } : {}) });
    } else if (file) {
      facts.artifacts.push({ ...file, location, via: 'filename' });
    }
  }
  for (const [name, b] of entries) {
    if (!JAVA_ARCHIVE_RE.test(name)) continue;
    if (depth >= MAX_DEPTH) facts.errors.push(`${location}!${name}: nested deeper than ${MAX_DEPTH} archives; not examined`);
    else await examine(b, `${location}!${name}`, depth + 1, facts);
  }
  const nested = [...entries.keys()].some((n) => JAVA_ARCHIVE_RE.test(n));
  if (facts.artifacts.length === before && !nested) facts.unidentified.push(location);
}

/** What a Java archive (and every archive nested in it) contains. Never throws. */
export async function examineJavaArchive(buf: Buffer, location: string): Promise<JavaArchiveFacts> {
  const facts: JavaArchiveFacts = { artifacts: [], unidentified: [], errors: [] };
  await examine(buf, location, 0, facts);
  return facts;
}

export function javaPackages(facts: JavaArchiveFacts): Package[] {
  return facts.artifacts.map((a) => {
    const group = a.groupId ?? a.artifactId;
    const vendor = group.split('.')[1] ?? group.split('.')[0]!;
    return {
      ecosystem: 'maven' as const,
      name: a.artifactId,
      version: a.version,
      purl: buildPurl({ type: 'maven', namespace: group, name: a.artifactId, version: a.version }),
      // The image path of the outermost archive: where the package's layer is found.
      locations: [a.location.split('!')[0]!],
      ...(a.licenses?.length ? { licenses: a.licenses } : {}),
      cpes: [`cpe:2.3:a:${vendor.toLowerCase()}:${a.artifactId.toLowerCase()}:${a.version}:*:*:*:*:*:*:*`],
    };
  });
}

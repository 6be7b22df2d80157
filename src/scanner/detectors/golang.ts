/**
 * Go binaries: the module build info the linker writes into `.go.buildinfo` (Go >= 1.18
 * inline format, as `go version -m` reads it): main module, dependencies (with `=>`
 * replacements) and the Go version, reported as the `stdlib` package the way syft does.
 */
import { buildPurl } from '../purl';
import type { Package } from './types';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const FLAG_INLINE = 0x2;

export interface GoModule {
  path: string;
  version: string;
}

export interface GoBuildInfo {
  goVersion: string;
  main?: GoModule;
  deps: GoModule[];
}

function uvarint(buf: Buffer, off: number): [number, number] | undefined {
  let x = 0;
  let s = 1;
  for (let i = off; i < buf.length && i < off + 10; i++) {
    const b = buf[i]!;
    x += (b & 0x7f) * s;
    if (b < 0x80) return [x, i + 1];
    s *= 128;
  }
  return undefined;
}

function readString(buf: Buffer, off: number): [string, number] | undefined {
  const v = uvarint(buf, off);
  if (!v || v[1] + v[0] > buf.length) return undefined;
  return [buf.toString('utf8', v[1], v[1] + v[0]), v[1] + v[0]];
}

/** Parse the build info blob (section bytes or the whole file, found by its magic). 'legacy' for pre-1.18 binaries. */
export function parseGoBuildInfo(data: Buffer): GoBuildInfo | 'legacy' | undefined {
  const at = data.indexOf(MAGIC);
  if (at === -1 || at + 32 > data.length) return undefined;
  if ((data[at + 15]! & FLAG_INLINE) === 0) return 'legacy';
  const v = readString(data, at + 32);
  if (!v) return undefined;
  const m = readString(data, v[1]);
  if (!m) return undefined;
  let mod = m[0];
  // The module info is framed by 16-byte sentinels.
  if (mod.length >= 33 && mod[mod.length - 17] === '\n') mod = mod.slice(16, -16);
  return { goVersion: v[0], ...parseModInfo(mod) };
}

export function parseModInfo(text: string): { main?: GoModule; deps: GoModule[] } {
  let main: GoModule | undefined;
  const deps: GoModule[] = [];
  let last: GoModule | undefined;
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'mod' && f[1]) main = last = { path: f[1], version: f[2] ?? '' };
    else if (f[0] === 'dep' && f[1]) deps.push((last = { path: f[1], version: f[2] ?? '' }));
    else if (f[0] === '=>' && f[1] && last) {
      // A replacement stands in for the module on the line before it.
      last.path = f[1];
      last.version = f[2] ?? '';
    }
  }
  return { ...(main ? { main } : {}), deps };
}

export function goPurl(path: string, version: string): string {
  const slash = path.lastIndexOf('/');
  return buildPurl({
    type: 'golang',
    ...(slash > 0 ? { namespace: path.slice(0, slash) } : {}),
    name: slash > 0 ? path.slice(slash + 1) : path,
    ...(version ? { version } : {}),
  });
}

function goCpe(path: string, version: string): string[] | undefined {
  const m = /^(?:github\.com|gitlab\.com)\/([^/]+)\/([^/]+)/.exec(path);
  if (!m || !version || version === '(devel)') return undefined;
  const v = version.replace(/^v/, '');
  return [`cpe:2.3:a:${m[1]!.toLowerCase()}:${m[2]!.toLowerCase()}:${v}:*:*:*:*:*:*:*`];
}

/** One package per module (main, deps) plus the Go standard library. */
export function goPackages(info: GoBuildInfo, location: string): Package[] {
  const mods = [...(info.main ? [info.main] : []), ...info.deps];
  const out: Package[] = mods
    .filter((m) => m.version !== '')
    .map((m) => {
      const cpes = goCpe(m.path, m.version);
      return {
        ecosystem: 'golang' as const,
        name: m.path,
        version: m.version,
        purl: goPurl(m.path, m.version),
        locations: [location],
        ...(cpes ? { cpes } : {}),
      };
    });
  const std = /^go(\d+\.\d+(?:\.\d+)?)/.exec(info.goVersion);
  if (std) {
    out.push({
      ecosystem: 'golang',
      name: 'stdlib',
      version: info.goVersion,
      purl: buildPurl({ type: 'golang', name: 'stdlib', version: std[1]! }),
      locations: [location],
      cpes: [`cpe:2.3:a:golang:go:${std[1]}:-:*:*:*:*:*:*`],
    });
  }
  return out;
}

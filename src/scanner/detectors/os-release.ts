import type { ImageFilesystem } from '../layers';
import type { Distro } from './types';

const PATHS = ['/etc/os-release', '/usr/lib/os-release'];
const FALLBACKS = ['/etc/alpine-release', '/etc/debian_version'];

export function wantsOsRelease(path: string): boolean {
  return PATHS.includes(path) || FALLBACKS.includes(path);
}

/** Parse os-release(5): KEY=value, values optionally quoted with shell-style escapes. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) {
      const q = v[0];
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\(["\\`$])/g, '$1');
    }
    out[m[1]!] = v;
  }
  return out;
}

export function detectDistro(fs: ImageFilesystem): Distro | undefined {
  for (const p of PATHS) {
    const buf = fs.readFile(p);
    if (!buf) continue;
    const kv = parseOsRelease(buf.toString('utf8'));
    if (!kv.ID) continue;
    return {
      id: kv.ID.toLowerCase(),
      ...(kv.VERSION_ID ? { versionId: kv.VERSION_ID } : {}),
      ...(kv.VERSION_CODENAME ? { versionCodename: kv.VERSION_CODENAME } : {}),
      ...(kv.PRETTY_NAME ? { prettyName: kv.PRETTY_NAME } : {}),
      idLike: (kv.ID_LIKE ?? '')
        .split(/\s+/)
        .filter(Boolean)
        .map((s) => s.toLowerCase()),
      location: p,
    };
  }
  const alpine = fs.readFile('/etc/alpine-release');
  if (alpine) return { id: 'alpine', versionId: alpine.toString('utf8').trim(), idLike: [], location: '/etc/alpine-release' };
  const debian = fs.readFile('/etc/debian_version');
  if (debian) {
    const v = debian.toString('utf8').trim();
    // Released Debian writes "12.5"; testing/sid write a codename like "trixie/sid".
    return { id: 'debian', ...(/^\d/.test(v) ? { versionId: v.split('.')[0]! } : {}), idLike: [], location: '/etc/debian_version' };
  }
  return undefined;
}

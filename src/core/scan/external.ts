import { spawn } from 'node:child_process';
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest, sha256Hex } from '../../lib/hash';
import { StellaError } from '../../lib/errors';
import { which } from '../../dev/proc';
import { ECOSYSTEMS, type CycloneDxBom, type Ecosystem, type Package } from '../../scanner/index';

/**
 * Optional external SBOM generators (`stella scanner config set engine syft|trivy`). The
 * built-in scanner still opens the image first (digests, path safety, distro); the tool then
 * produces the CycloneDX SBOM, and advisory matching stays stella's (the same OSV semantics
 * and replayable inventory whichever tool listed the packages).
 */
export const ENGINES = ['builtin', 'syft', 'trivy'] as const;
export type ScanEngine = (typeof ENGINES)[number];

/** purl types whose namespace is part of the package's name in its ecosystem. */
const NAMESPACED = new Set(['npm', 'golang', 'composer']);

/** `pkg:type/namespace/name@version?qualifiers` → parts (percent-decoded). */
export function parsePurl(
  purl: string,
): { type: string; namespace: string | null; name: string; version: string | null; qualifiers: Record<string, string> } | null {
  const m = /^pkg:([a-zA-Z][a-zA-Z0-9.+-]*)\/([^@?#]+)(?:@([^?#]+))?(?:\?([^#]*))?/.exec(purl);
  if (!m) return null;
  const path = m[2]!.split('/').map(decodeURIComponent);
  const name = path.pop()!;
  const qualifiers: Record<string, string> = {};
  for (const kv of (m[4] ?? '').split('&').filter(Boolean)) {
    const [k, v = ''] = kv.split('=');
    qualifiers[decodeURIComponent(k!)] = decodeURIComponent(v);
  }
  return { type: m[1]!.toLowerCase(), namespace: path.length ? path.join('/') : null, name, version: m[3] ? decodeURIComponent(m[3]) : null, qualifiers };
}

/** Every package of an SBOM's components that has a purl and a version; purl types stella has no ecosystem for count as "other". */
export function packagesFromBom(bom: CycloneDxBom): Package[] {
  const out: Package[] = [];
  for (const c of (bom.components ?? []) as { purl?: string }[]) {
    const p = c.purl ? parsePurl(c.purl) : null;
    if (!p?.version) continue;
    const ecosystem: Ecosystem = (ECOSYSTEMS as readonly string[]).includes(p.type) ? (p.type as Ecosystem) : 'other';
    const name = NAMESPACED.has(p.type) && p.namespace ? `${p.namespace}/${p.name}` : p.name;
    const src = p.qualifiers.upstream;
    out.push({
      ecosystem,
      name,
      version: p.version,
      purl: c.purl!,
      locations: [],
      ...(p.qualifiers.arch ? { arch: p.qualifiers.arch } : {}),
      ...(src ? { source: { name: src.split('@')[0]!, version: src.split('@')[1] ?? p.version } } : {}),
    });
  }
  return out.sort((a, b) => a.purl.localeCompare(b.purl));
}

function toolArgs(engine: Exclude<ScanEngine, 'builtin'>, path: string, format: string): string[] {
  if (engine === 'syft') {
    const scheme = format === 'oci-layout' ? 'oci-dir' : format === 'docker-archive' ? 'docker-archive' : 'oci-archive';
    return ['scan', `${scheme}:${path}`, '-o', 'cyclonedx-json', '-q'];
  }
  return ['image', '--input', path, '--format', 'cyclonedx', '--quiet'];
}

export interface ToolRunOptions {
  /** Aborting kills the tool (and anything it started); the run rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The tool is killed after this long (default 30 minutes). */
  timeoutMs?: number;
  /** Largest stdout accepted (default 512 MiB). */
  maxBytes?: number;
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a tool without blocking the event loop (heartbeats keep flowing while it works). It
 * runs in its own process group so a cancel or timeout kills whatever it spawned as well.
 */
export function runTool(bin: string, args: readonly string[], opts: ToolRunOptions = {}): Promise<ToolResult> {
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  const maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
  return new Promise<ToolResult>((resolvePromise, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason ?? new Error('cancelled'));
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let stopped: unknown;
    const kill = (why: unknown) => {
      if (stopped !== undefined) return;
      stopped = why;
      const signalGroup = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          /* already gone */
        }
      };
      signalGroup('SIGTERM');
      setTimeout(() => signalGroup('SIGKILL'), 5_000).unref();
    };
    const onAbort = () => kill(opts.signal?.reason ?? new Error('cancelled'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => kill(new StellaError('UNAVAILABLE', `${bin} did not finish within ${Math.round(timeoutMs / 1000)} s; killed`)), timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > maxBytes) kill(new StellaError('TOO_LARGE', `${bin} printed more than ${maxBytes} bytes; killed`));
      else out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 1000) err.push(b);
    });
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      done();
      reject(e);
    });
    child.on('close', (code) => {
      done();
      if (stopped !== undefined) return reject(stopped);
      resolvePromise({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/**
 * Runs the tool and normalises its SBOM so a retried activity stores the same bytes: the
 * timestamp becomes the scan time and the serial number is derived from the content.
 */
export async function externalSbom(
  engine: Exclude<ScanEngine, 'builtin'>,
  path: string,
  format: string,
  scanTime: string,
  artifactDigest: string,
  opts: ToolRunOptions = {},
): Promise<{ sbom: CycloneDxBom; bytes: Buffer; digest: string; packages: Package[]; tool: string }> {
  const { bom, tool } = await externalBom(engine, path, format, opts);
  return normaliseSbom(bom, scanTime, artifactDigest, tool);
}

/** The tool's own CycloneDX output and its version (stored in the inventory; normalised per scan time). */
export async function externalBom(
  engine: Exclude<ScanEngine, 'builtin'>,
  path: string,
  format: string,
  opts: ToolRunOptions = {},
): Promise<{ bom: CycloneDxBom; tool: string }> {
  const bin = which(engine);
  if (!bin)
    throw new StellaError(
      'UNAVAILABLE',
      `scanner engine is ${engine} but ${engine} is not on the worker's PATH (install it, or: stella scanner config set engine builtin)`,
    );
  let r: ToolResult;
  try {
    r = await runTool(bin, toolArgs(engine, path, format), opts);
  } catch (e) {
    if (opts.signal?.aborted || e instanceof StellaError) throw e;
    throw new StellaError('INTEGRITY', `${engine} failed on ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (r.code !== 0)
    throw new StellaError('INTEGRITY', `${engine} failed on ${path}: ${(r.stderr || `exit ${r.code}`).trim().split('\n').slice(-2).join(' | ')}`);
  let bom: CycloneDxBom & { metadata?: Record<string, unknown>; serialNumber?: string; components?: unknown[] };
  try {
    bom = JSON.parse(r.stdout);
  } catch {
    throw new StellaError('INTEGRITY', `${engine} did not print a JSON SBOM`);
  }
  if ((bom as { bomFormat?: string }).bomFormat !== 'CycloneDX') throw new StellaError('INTEGRITY', `${engine} output is not a CycloneDX SBOM`);
  const v = await runTool(bin, ['--version'], { ...opts, timeoutMs: 60_000 });
  return { bom, tool: v.stdout.trim().split('\n')[0] || engine };
}

/** Scan time as the timestamp, stella's properties added, a content-derived serial number (pure). */
export function normaliseSbom(
  bom: CycloneDxBom & { metadata?: Record<string, unknown>; components?: unknown[] },
  scanTime: string,
  artifactDigest: string,
  tool: string,
): { sbom: CycloneDxBom; bytes: Buffer; digest: string; packages: Package[]; tool: string } {
  const components = [...((bom.components ?? []) as { purl?: string; 'bom-ref'?: string; name?: string }[])].sort((a, b) =>
    (a.purl ?? a['bom-ref'] ?? a.name ?? '').localeCompare(b.purl ?? b['bom-ref'] ?? b.name ?? ''),
  );
  const body = {
    ...bom,
    components,
    metadata: {
      ...(bom.metadata ?? {}),
      timestamp: scanTime,
      properties: [
        ...(((bom.metadata ?? {}) as { properties?: unknown[] }).properties ?? []),
        { name: 'stella:artifact-digest', value: artifactDigest },
        { name: 'stella:engine', value: tool },
      ],
    },
  };
  const h = sha256Hex(canonicalJson({ ...body, serialNumber: null }));
  const sbom = {
    ...body,
    serialNumber: `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`,
  } as CycloneDxBom;
  const bytes = Buffer.from(canonicalJson(sbom));
  return { sbom, bytes, digest: sha256Digest(bytes), packages: packagesFromBom(sbom), tool };
}

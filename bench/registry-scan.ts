/**
 * Scan from a registry (issue 14): the built-in scanner reading an image's layers streamed
 * from a real registry (Debian's docker-registry on loopback, plain HTTP), against
 * `skopeo copy docker://… oci:<tmp>` of the same image from the same registry — pulling the
 * same layers, digests checked, written to disk. Both sides start cold: a fresh, empty layer
 * cache for the scan, an empty OCI layout for skopeo. Medians over interleaved runs.
 *
 *   npm run bench                         # a row of the issue table
 *   STELLA_BENCH_ONLY=registry-scan npm run bench
 *   STELLA_BENCH_REGISTRY_MB (default 24), STELLA_BENCH_REGISTRY_RUNS (default 3)
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { median, r2, type Row } from './table';

const run = promisify(execFile);
const envInt = (k: string, d: number) => Number(process.env[k] ?? d);

export async function registryScanRow(log: (s: string) => void): Promise<Row> {
  const { buildOciFixture, synthDpkgStatus, synthPackageLock } = await import('../test/support/oci-fixture');
  const { pushFixture, startRegistry } = await import('../test/support/registry');
  const { createLayerCache, createRegistryClient, openRegistryImage } = await import('../src/registry/index');
  const { inventoryImage } = await import('../src/scanner/scan');
  const mb = envInt('STELLA_BENCH_REGISTRY_MB', 24);
  const runs = envInt('STELLA_BENCH_REGISTRY_RUNS', 3);
  // Incompressible filler like real binaries, so transfer, gunzip and hashing see realistic bytes.
  const filler = Array.from({ length: mb }, (_, i) => ({ path: `usr/lib/bench/blob${i}.so`, content: randomBytes(1024 * 1024) }));
  const fx = await buildOciFixture({
    ref: 'bench',
    archives: false,
    layers: [
      [
        { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' },
        { path: 'var/lib/dpkg/status', content: synthDpkgStatus(1000) },
      ],
      filler.slice(0, Math.ceil(mb / 2)),
      [...filler.slice(Math.ceil(mb / 2)), { path: 'app/package-lock.json', content: synthPackageLock(250) }],
    ],
  });
  const reg = await startRegistry();
  const scratch = await mkdtemp(join(tmpdir(), 'stella-bench-registry-'));
  try {
    await pushFixture(reg.host, 'bench/app:1', fx.dir);
    const pinned = `${reg.host}/bench/app@${fx.digest}`;
    const client = createRegistryClient({ insecureRegistries: [reg.host] });
    let n = 0;
    const scan = async () => {
      const cacheDir = join(scratch, `cache-${n++}`);
      const cache = createLayerCache({ dir: cacheDir, maxBytes: 1 << 30 });
      const t = performance.now();
      const inv = await inventoryImage(() => openRegistryImage(client, pinned, { cache }));
      const s = (performance.now() - t) / 1000;
      if (inv.artifactDigest !== fx.digest || inv.packages.length < 1000)
        throw new Error(`registry scan read ${inv.artifactDigest} with ${inv.packages.length} packages`);
      await rm(cacheDir, { recursive: true, force: true });
      return s;
    };
    const skopeo = async () => {
      const dest = join(scratch, `oci-${n++}`);
      const t = performance.now();
      await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${pinned}`, `oci:${dest}:bench`], {
        env: { ...process.env, TMPDIR: scratch },
      });
      const s = (performance.now() - t) / 1000;
      await rm(dest, { recursive: true, force: true });
      return s;
    };
    // The same scan of the image's OCI layout on disk: what the scanner itself costs, without the registry.
    const layout = async () => {
      const t = performance.now();
      await inventoryImage(fx.dir);
      return (performance.now() - t) / 1000;
    };
    await scan(); // warm-up (module init, JIT, registry's own caches)
    await skopeo();
    await layout();
    const scans: number[] = [];
    const copies: number[] = [];
    const locals: number[] = [];
    for (let i = 0; i < runs; i++) {
      copies.push(await skopeo());
      scans.push(await scan());
      locals.push(await layout());
    }
    const [s, b, l] = [median(scans), median(copies), median(locals)];
    log(
      `registry scan: ${s.toFixed(2)} s; skopeo copy ${b.toFixed(2)} s; scan of the OCI layout ${l.toFixed(2)} s (${mb} MiB, ${fx.layerDigests.length} layers, ${runs} runs)`,
    );
    return {
      what: `scan of a ${mb} MiB image from a registry (cold layer cache)`,
      measured: `${r2(s)} s`,
      baseline: `skopeo copy docker:// → oci: of the same image: ${r2(b)} s`,
      ratio: r2(s / b),
      target: '≤ 1.5',
      why: `skopeo only moves and hashes the compressed blobs; the scan also gunzips, hashes the uncompressed layer (diff_id) and walks every tar entry — the same image from its OCI layout on disk takes ${r2(l)} s, so the registry adds ${r2(Math.max(0, s - l))} s`,
    };
  } finally {
    await reg.stop();
    await rm(scratch, { recursive: true, force: true });
    await fx.cleanup();
  }
}

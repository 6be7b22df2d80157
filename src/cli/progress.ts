import { createRequire } from 'node:module';

/** A progress bar on stderr when it is a terminal (and not --quiet); silent otherwise. */
export function progressBar(label: string, quiet: boolean) {
  if (quiet || !process.stderr.isTTY)
    return { start() {}, update() {}, stop() {} } as { start(total: number): void; update(n: number, total?: number): void; stop(): void };
  // Loaded only when a bar is shown (a terminal): it costs ~30-190 ms of start-up otherwise.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {percentage}%`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    start(total: number) {
      bar.start(total, 0);
      started = true;
    },
    update(n: number, total?: number) {
      if (!started) this.start(total ?? n);
      if (total !== undefined) bar.setTotal(total);
      bar.update(n);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

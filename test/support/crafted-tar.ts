import type * as tarStream from 'tar-stream';
import { pack } from 'tar-stream';

export type CraftedEntry = { header: Partial<tarStream.Header> & { name: string }; body?: string | Buffer };

/** Builds a (possibly malicious) archive with tar-stream, which does no path policing: it writes what it is given. */
export async function craftTar(entries: CraftedEntry[]): Promise<Buffer> {
  const p = pack();
  const out = (async () => {
    const parts: Buffer[] = [];
    for await (const c of p) parts.push(c as Buffer);
    return Buffer.concat(parts);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      p.entry({ mtime: new Date(0), ...e.header }, e.body ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  return out;
}

/** Archive compression by file name, shared by pack export (API) and the CLI's local writers (no I/O). */
import type { Compression } from '../../../archive';

export function compressionFor(file: string): Compression {
  if (/\.(tar\.gz|tgz|gz)$/i.test(file)) return 'gzip';
  if (/\.(tar\.zst|zst)$/i.test(file)) return 'zstd';
  return 'none';
}

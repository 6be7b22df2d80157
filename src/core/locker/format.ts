/** Transitional: src/cli/output.ts still re-exports humanBytes from here; the one implementation is src/lib/format. */
export { humanBytes as humanBytesShort } from '../../lib/format';

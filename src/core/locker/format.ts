export { humanBytes as humanBytesShort } from '../../lib/format';

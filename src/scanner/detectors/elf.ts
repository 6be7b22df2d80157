/**
 * Just enough ELF to find a named section's bytes (Go's .go.buildinfo, cargo-auditable's
 * .dep-v0): 32/64-bit, either byte order. Hand-written because no maintained JS ELF reader
 * exists; malformed input yields undefined, never an exception.
 */
export const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).equals(ELF_MAGIC);
}

const SHT_NOBITS = 8;

interface Reader {
  u16(off: number): number;
  u32(off: number): number;
  addr(off: number): number;
}

function reader(buf: Buffer, is64: boolean, le: boolean): Reader {
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number) => Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  return { u16, u32, addr: is64 ? u64 : u32 };
}

/** Every section's name and bytes (NOBITS sections omitted). */
export function elfSections(buf: Buffer): Map<string, Buffer> | undefined {
  try {
    if (buf.length < 52 || !isElf(buf)) return undefined;
    const is64 = buf[4] === 2;
    const le = buf[5] === 1;
    const r = reader(buf, is64, le);
    const shoff = r.addr(is64 ? 0x28 : 0x20);
    const shentsize = r.u16(is64 ? 0x3a : 0x2e);
    const shnum = r.u16(is64 ? 0x3c : 0x30);
    const shstrndx = r.u16(is64 ? 0x3e : 0x32);
    if (shoff === 0 || shnum === 0 || shoff + shnum * shentsize > buf.length || shstrndx >= shnum) return undefined;
    const headers = Array.from({ length: shnum }, (_, i) => {
      const h = shoff + i * shentsize;
      return {
        name: r.u32(h),
        type: r.u32(h + 4),
        offset: r.addr(is64 ? h + 0x18 : h + 0x10),
        size: r.addr(is64 ? h + 0x20 : h + 0x14),
      };
    });
    const strtab = headers[shstrndx]!;
    const names = buf.subarray(strtab.offset, strtab.offset + strtab.size);
    const out = new Map<string, Buffer>();
    for (const h of headers) {
      if (h.type === SHT_NOBITS || h.offset + h.size > buf.length) continue;
      const end = names.indexOf(0, h.name);
      out.set(names.toString('latin1', h.name, end === -1 ? names.length : end), buf.subarray(h.offset, h.offset + h.size));
    }
    return out;
  } catch {
    return undefined;
  }
}

export {};
/**
 * Runs every benchmark in one process and prints its figures. Each bench reports ratios
 * against a baseline measured in the same run (raw sha256, an empty workflow, a plain copy),
 * so results compare across machines; nothing here asserts a timing.
 *
 *   npm run bench                 # all
 *   npm run bench -- merkle scanner
 */
const BENCHES: Record<string, { module: string; fn: string }> = {
  merkle: { module: './merkle', fn: 'benchMerkle' },
  scanner: { module: './scanner', fn: 'benchScanner' },
  evidence: { module: './evidence', fn: 'benchEvidence' },
  promotion: { module: './promotion', fn: 'benchPromotion' },
  backup: { module: './backup', fn: 'benchBackup' },
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(BENCHES);
let failed = 0;
for (const name of names) {
  const b = BENCHES[name];
  if (!b) {
    console.error(`unknown bench ${name}; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}`);
  try {
    const mod = (await import(b.module)) as Record<string, (o?: unknown) => Promise<Record<string, unknown>>>;
    const fn = mod[b.fn];
    if (!fn) throw new Error(`${b.module} exports no ${b.fn}`);
    const result = await fn();
    const w = Math.max(...Object.keys(result).map((k) => k.length));
    for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(w)}  ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(3)) : v}`);
  } catch (e) {
    failed++;
    console.error(`${name}: ${(e as Error).message}`);
  }
}
process.exit(failed ? 1 : 0);

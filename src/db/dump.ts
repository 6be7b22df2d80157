/**
 * Generic logical dump/load of a PostgreSQL schema, like pg_dump/pg_restore but independent of
 * their versions; table-agnostic by design (it names no stella table).
 *
 * Which tables: every ordinary or partitioned table of the `public` schema, read from the
 * catalog (pg_class), minus the names the caller excludes. The backup feature uses it for its
 * consistent export/import of the whole index, which is legitimately cross-cutting: a backup
 * must hold every feature's rows from ONE snapshot, so it cannot go feature by feature. The
 * backup excludes only its own restore bookkeeping and schema_migrations (the restoring build
 * runs its own migrations).
 *
 * Export: all tables inside ONE repeatable-read, read-only transaction (one snapshot), one
 * canonical JSON object per row, rows in primary-key order. PostgreSQL renders each row
 * (row_to_json) and parses it back on import (json_populate_recordset), so bytea, timestamptz
 * (microseconds), jsonb and arrays round-trip exactly; int8/numeric are carried as strings so
 * no JavaScript number rounding touches them.
 */
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import type { Db, DbClient } from './pool';
import { canonicalJson } from '../lib/canonical';

export interface ColumnInfo {
  name: string;
  type: string;
  generated: boolean;
}
export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  primaryKey: string[];
  dependsOn: string[];
  updateBlocked: boolean;
}

/** The tables of the public schema (minus `exclude`), parents before children. */
export async function describeTables(db: Db | DbClient, exclude: ReadonlySet<string> = new Set()): Promise<TableInfo[]> {
  const t = await db.query(`SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r','p') AND NOT c.relispartition ORDER BY c.relname`);
  const out: TableInfo[] = [];
  for (const row of t.rows as { oid: number; relname: string }[]) {
    if (exclude.has(row.relname)) continue;
    const cols = await db.query(
      `SELECT attname, format_type(atttypid, atttypmod) AS type, attgenerated <> '' AS generated
      FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [row.oid],
    );
    const pk = await db.query(
      `SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`,
      [row.oid],
    );
    const fk = await db.query(
      `SELECT DISTINCT confrelid::regclass::text AS ref FROM pg_constraint WHERE conrelid = $1 AND contype = 'f' AND confrelid <> conrelid`,
      [row.oid],
    );
    // Tables whose rows may not be updated (append-only triggers): restore them with DO NOTHING.
    const trg = await db.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND (tgtype & 16) <> 0`, [row.oid]);
    out.push({
      name: row.relname,
      columns: cols.rows.map((c) => ({ name: c.attname, type: c.type, generated: c.generated })),
      primaryKey: pk.rows.map((p) => p.attname),
      dependsOn: fk.rows.map((f) =>
        String(f.ref)
          .replace(/^public\./, '')
          .replace(/"/g, ''),
      ),
      updateBlocked: trg.rows[0].n > 0,
    });
  }
  return topoSort(out);
}

/** Parents before children, so foreign keys hold while rows go in; name order otherwise. */
export function topoSort(tables: TableInfo[]): TableInfo[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const done = new Set<string>();
  const out: TableInfo[] = [];
  const visit = (t: TableInfo, stack: Set<string>) => {
    if (done.has(t.name) || stack.has(t.name)) return;
    stack.add(t.name);
    for (const d of t.dependsOn) {
      const dep = byName.get(d);
      if (dep) visit(dep, stack);
    }
    done.add(t.name);
    out.push(t);
  };
  for (const t of [...tables].sort((a, b) => (a.name < b.name ? -1 : 1))) visit(t, new Set());
  return out;
}

const q = (ident: string) => `"${ident.replace(/"/g, '""')}"`;
const TEXT_CARRIED = /^(bigint|numeric)/;

/** Rows per restore batch; the export records the byte offset of every batch's first row. */
export const BATCH_ROWS = 1000;

export interface ExportedTable {
  name: string;
  file: string;
  rows: number;
  bytes: number;
  sha256: string;
  columns: ColumnInfo[];
  primaryKey: string[];
  batchOffsets: number[];
}
export interface IndexExport {
  snapshotAt: string;
  tables: ExportedTable[];
  migrations: { version: number; name: string; checksum: string }[];
}

export interface ExportOptions<T> {
  /** Tables not to export (by name). */
  exclude: ReadonlySet<string>;
  /** Called every page (heartbeat). */
  onRows: (table: string, rows: number) => void;
  /** Runs inside the same snapshot, for reads that must agree with the exported rows. */
  extra: (client: DbClient) => Promise<T>;
}

/** Writes `<dir>/<table>.jsonl` for every table inside one snapshot. */
export async function exportIndex<T>(db: Db, dir: string, opts: ExportOptions<T>): Promise<IndexExport & { extra: T }> {
  const { exclude, onRows, extra } = opts;
  await fsp.mkdir(dir, { recursive: true });
  const client = await db.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`SET LOCAL TimeZone = 'UTC'`);
    const snap = await client.query(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at`);
    const tables = await describeTables(client, exclude);
    const mig = await client.query('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    const exported: ExportedTable[] = [];
    for (const t of tables) {
      const cols = t.columns.filter((c) => !c.generated);
      const select = cols.map((c) => (TEXT_CARRIED.test(c.type) ? `${q(c.name)}::text AS ${q(c.name)}` : q(c.name))).join(', ');
      const order = (t.primaryKey.length ? t.primaryKey.map(q) : cols.map((c) => q(c.name))).join(', ');
      const file = `${dir}/${t.name}.jsonl`;
      const out = createWriteStream(file);
      const hash = createHash('sha256');
      let rows = 0;
      let bytes = 0;
      const batchOffsets: number[] = [];
      await client.query(`DECLARE bk_cur NO SCROLL CURSOR FOR SELECT row_to_json(x)::text AS j FROM (SELECT ${select} FROM ${q(t.name)} ORDER BY ${order}) x`);
      for (;;) {
        const page = await client.query('FETCH 2000 FROM bk_cur');
        if (!page.rowCount) break;
        const parts: Buffer[] = [];
        for (const r of page.rows) {
          if (rows % BATCH_ROWS === 0) batchOffsets.push(bytes);
          const line = Buffer.from(canonicalJson(JSON.parse(r.j)) + '\n', 'utf8');
          parts.push(line);
          bytes += line.length;
          rows++;
        }
        const buf = Buffer.concat(parts);
        hash.update(buf);
        if (!out.write(buf)) await once(out, 'drain');
        onRows(t.name, rows);
      }
      await client.query('CLOSE bk_cur');
      out.end();
      await once(out, 'finish');
      exported.push({
        name: t.name,
        file: `${t.name}.jsonl`,
        rows,
        bytes,
        sha256: `sha256:${hash.digest('hex')}`,
        columns: cols,
        primaryKey: t.primaryKey,
        batchOffsets,
      });
    }
    const extraResult = await extra(client);
    await client.query('COMMIT');
    return {
      snapshotAt: snap.rows[0].at,
      tables: exported,
      migrations: mig.rows.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })),
      extra: extraResult,
    };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

/** `count` lines of a JSON-lines file starting at byte `offset` (streamed; files can be large). */
export async function readLinesAt(file: string, offset: number, count: number): Promise<string[]> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8', start: offset, highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  const out: string[] = [];
  try {
    for await (const line of rl) {
      if (!line) continue;
      out.push(line);
      if (out.length >= count) break;
    }
  } finally {
    rl.close();
  }
  return out;
}

/**
 * Marks a batch as applied in the caller's bookkeeping, inside the batch's own transaction, so
 * a retry after a crash finds the mark and skips (the caller owns where marks live).
 */
export interface BatchMarker {
  applied(client: DbClient): Promise<boolean>;
  record(client: DbClient, rows: number): Promise<void>;
}

/**
 * Inserts one batch of exported rows, exactly once (see BatchMarker). Rows already present
 * (seed rows the migrations created) are overwritten unless the table is append-only.
 */
export async function importBatch(
  db: Db,
  table: TableInfo,
  backupColumns: string[],
  lines: string[],
  marker: BatchMarker,
): Promise<{ inserted: number; skipped: boolean }> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    if (await marker.applied(client)) {
      await client.query('ROLLBACK');
      return { inserted: 0, skipped: true };
    }
    const target = new Set(table.columns.filter((c) => !c.generated).map((c) => c.name));
    const cols = backupColumns.filter((c) => target.has(c));
    const list = cols.map(q).join(', ');
    let inserted = 0;
    if (lines.length) {
      const r = await client.query(
        `INSERT INTO ${q(table.name)} (${list}) OVERRIDING SYSTEM VALUE SELECT ${list} FROM json_populate_recordset(NULL::${q(table.name)}, $1::json) ${onConflict(table, cols)}`,
        [`[${lines.join(',')}]`],
      );
      inserted = r.rowCount ?? 0;
    }
    await marker.record(client, lines.length);
    await client.query('COMMIT');
    return { inserted, skipped: false };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

function onConflict(table: TableInfo, cols: string[]): string {
  if (!table.primaryKey.length || table.updateBlocked) return 'ON CONFLICT DO NOTHING';
  const upd = cols.filter((c) => !table.primaryKey.includes(c));
  if (!upd.length) return 'ON CONFLICT DO NOTHING';
  return `ON CONFLICT (${table.primaryKey.map(q).join(', ')}) DO UPDATE SET ${upd.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')}`;
}

/** Serial/identity sequences continue after the highest restored value. */
export async function resetSequences(db: Db): Promise<number> {
  const r = await db.query(`SELECT c.relname AS tbl, a.attname AS col, pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS seq
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL`);
  for (const row of r.rows as { tbl: string; col: string; seq: string }[]) {
    await db.query(`SELECT setval($1, GREATEST(coalesce(max(${q(row.col)}), 0), 1), max(${q(row.col)}) IS NOT NULL) FROM ${q(row.tbl)}`, [row.seq]);
  }
  return r.rowCount ?? 0;
}

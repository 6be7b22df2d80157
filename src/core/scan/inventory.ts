/**
 * scan_inventories: what one read of an image found, stored once per image digest and scanner
 * (name incl. engine, version). The only module that runs SQL on it. SBOM, matching and
 * attestation read it instead of opening the image again.
 */
import type { AppContext } from '../context';
import type { Inventory } from '../../scanner/index';

export interface InventoryKey {
  tenant: string;
  artifactDigest: string;
  scannerName: string;
  scannerVersion: string;
}

export async function getInventory(ctx: AppContext, k: InventoryKey): Promise<Inventory | null> {
  const r = await ctx.db.query<{ inventory: Inventory }>(
    'SELECT inventory FROM scan_inventories WHERE tenant_id=$1 AND artifact_digest=$2 AND scanner_name=$3 AND scanner_version=$4',
    [k.tenant, k.artifactDigest, k.scannerName, k.scannerVersion],
  );
  return r.rows[0]?.inventory ?? null;
}

/** Store once: a concurrent or retried step that read the same image keeps the first row. */
export async function saveInventory(ctx: AppContext, k: InventoryKey, inv: Inventory): Promise<Inventory> {
  await ctx.db.query(
    `INSERT INTO scan_inventories (tenant_id, artifact_digest, scanner_name, scanner_version, inventory, packages, unidentified)
     VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING`,
    [k.tenant, k.artifactDigest, k.scannerName, k.scannerVersion, JSON.stringify(inv), inv.packages.length, inv.unidentified.length],
  );
  return (await getInventory(ctx, k)) ?? inv;
}

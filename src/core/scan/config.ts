/** Scanner settings per tenant: auto-scan (enabled, triggers) and the SBOM engine, kept in settings. */
import type { AppContext } from '../context';
import { audit } from '../audit';
import { badInput } from '../../lib/errors';
import { getSetting, putSetting } from '../settings/settings';
import { ENGINES, type ScanEngine } from './external';

export const AUTO_SCAN_KEY = 'scanner.auto_scan';
export const ENGINE_KEY = 'scanner.engine';
export const TRIGGERS = ['push', 'promote', 'manual'] as const;

export type AutoScanConfig = {
  enabled: boolean;
  triggers: string[];
};
const DEFAULT_AUTO: AutoScanConfig = { enabled: false, triggers: [] };

export async function autoScanConfig(ctx: Pick<AppContext, 'db'>, tenant: string): Promise<AutoScanConfig> {
  return { ...DEFAULT_AUTO, ...((await getSetting<Partial<AutoScanConfig>>(ctx.db, tenant, AUTO_SCAN_KEY)) ?? {}) };
}

/** Whether push events start scans for this tenant. */
export const acceptsPush = (cfg: AutoScanConfig) => cfg.enabled && cfg.triggers.includes('push');

/** Whether starting a promotion of an unscanned digest queues its scan for this tenant. */
export const acceptsPromote = (cfg: AutoScanConfig) => cfg.enabled && cfg.triggers.includes('promote');

/** Which tool lists an image's packages: the built-in scanner unless syft/trivy is chosen. */
export async function scannerEngine(ctx: Pick<AppContext, 'db'>, tenant: string): Promise<ScanEngine> {
  return (await getSetting<{ engine?: ScanEngine }>(ctx.db, tenant, ENGINE_KEY))?.engine ?? 'builtin';
}

/** The settings change `key = value` asks for (pure): a new auto-scan config or a new engine. */
export function decideScannerSetting(cur: AutoScanConfig, key: string, value: string): { autoScan: AutoScanConfig } | { engine: ScanEngine } {
  if (key === 'engine') {
    if (!(ENGINES as readonly string[]).includes(value)) throw badInput(`engine must be one of ${ENGINES.join(', ')}, got ${JSON.stringify(value)}`);
    return { engine: value as ScanEngine };
  }
  if (key === 'auto_scan.enabled') {
    if (!['true', 'false'].includes(value)) throw badInput(`auto_scan.enabled must be true or false, got ${JSON.stringify(value)}`);
    return { autoScan: { ...cur, enabled: value === 'true' } };
  }
  if (key === 'auto_scan.triggers') {
    const list = [
      ...new Set(
        value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    ];
    const bad = list.filter((t) => !(TRIGGERS as readonly string[]).includes(t));
    if (bad.length) throw badInput(`unknown trigger(s) ${bad.join(', ')}: expected a comma list of ${TRIGGERS.join(', ')}`);
    return { autoScan: { ...cur, triggers: list } };
  }
  throw badInput(`unknown scanner setting ${JSON.stringify(key)}: expected auto_scan.enabled, auto_scan.triggers or engine`);
}

/** `auto_scan.enabled true|false`, `auto_scan.triggers "push,promote"`, `engine builtin|syft|trivy`; returns the auto-scan config after. */
export async function setScannerConfig(ctx: Pick<AppContext, 'db'>, tenant: string, key: string, value: string): Promise<AutoScanConfig> {
  const cur = await autoScanConfig(ctx, tenant);
  const next = decideScannerSetting(cur, key, value);
  if ('engine' in next) {
    await putSetting(ctx.db, tenant, ENGINE_KEY, { engine: next.engine });
    return cur;
  }
  await putSetting(ctx.db, tenant, AUTO_SCAN_KEY, next.autoScan);
  return next.autoScan;
}

/** `stella scanner config set`: apply and audit one setting; returns the settings after. */
export async function changeScannerSetting(
  ctx: AppContext,
  tenant: string,
  req: { key: string; value: string; actor: string },
): Promise<{ auto_scan: AutoScanConfig; engine: ScanEngine }> {
  const before = await autoScanConfig(ctx, tenant);
  const after = await setScannerConfig(ctx, tenant, req.key, req.value);
  await audit(ctx.db, { tenant, actor: req.actor, action: 'scanner.config.set', target: req.key, details: { value: req.value, before, after } });
  return { auto_scan: after, engine: await scannerEngine(ctx, tenant) };
}

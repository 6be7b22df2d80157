/** `stella image register`: catalogue the image, audit it, and start push scans that waited for it. */
import type { AppContext } from '../context';
import { audit } from '../audit';
import { registerImage, type CatalogueImage } from './catalogue';
import { startQueuedPushScans } from './events';
import type { ScanWorkflows } from './start';

export async function registerImageForScans(
  ctx: AppContext,
  t: ScanWorkflows | null,
  tenant: string,
  req: { name: string; path: string; actor: string },
): Promise<CatalogueImage & { replaced: CatalogueImage | null; queuedScans: { eventIds: number[]; workflowId: string } | null }> {
  const r = await registerImage(ctx, tenant, req.name, req.path, req.actor);
  await audit(ctx.db, { tenant, actor: req.actor, action: 'scan.image.register', target: req.name, details: { path: r.path, digest: r.digest } });
  return { ...r, queuedScans: await startQueuedPushScans(ctx, t, tenant, { name: req.name, digest: r.digest }, req.actor) };
}

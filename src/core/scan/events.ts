/**
 * Auto-scan events — registry pushes (stella's body or a registry's webhook, src/core/scan/webhooks.ts)
 * and promotions of unscanned digests (the `promote` trigger): each is recorded in scan_events
 * with what became of it — ignored (auto-scan off, not a push), started (or joined) a scan,
 * failed (digest mismatch), or queued until its image is available. The only module that runs
 * SQL on scan_events.
 */
import type { AppContext } from '../context';
import { audit } from '../audit';
import { badInput, StellaError, unavailable } from '../../lib/errors';
import { acceptsPromote, acceptsPush, autoScanConfig, type AutoScanConfig } from './config';
import { startScan, type ScanWorkflows } from './start';
import type { ScanTrigger } from './types';
import type { WebhookEntry } from './webhooks';

export interface PushEvent {
  repository?: string;
  tag?: string;
  digest?: string;
  image?: string;
}

export type PushResult =
  | { eventId: number; status: 'ignored' | 'queued'; reason: string }
  | { eventId: number; status: 'failed'; reason: string; workflowId: string }
  | { eventId: number; status: 'started'; workflowId: string; runId: string; artifactDigest: string; joined: boolean };

export type ScanEvent = {
  id: number;
  trigger: string;
  repository: string | null;
  tag: string | null;
  artifact: string | null;
  image: string | null;
  status: string;
  reason: string | null;
  receivedAt: string;
};

interface ScanEventRow {
  id: string | number;
  trigger: string;
  repository: string | null;
  tag: string | null;
  artifact_digest: string | null;
  image: string | null;
  status: string;
  reason: string | null;
  received_at: Date | string;
}

/** Why a push is not acted on, or null when auto-scan takes pushes (pure). */
export function pushIgnoredReason(cfg: AutoScanConfig): string | null {
  if (!cfg.enabled) return 'auto_scan.enabled is false (stella scanner config set auto_scan.enabled true)';
  if (!acceptsPush(cfg)) return `push is not in auto_scan.triggers (${cfg.triggers.join(',') || 'none'})`;
  return null;
}

/** What to scan, in order: the catalogue name or path given, else repository:tag / repository, else the digest (pure). */
export function pushCandidates(ev: PushEvent): string[] {
  return [ev.image, ev.repository && ev.tag ? `${ev.repository}:${ev.tag}` : undefined, ev.repository, ev.digest].filter((x): x is string => !!x);
}

async function recordEvent(
  ctx: AppContext,
  tenant: string,
  ev: PushEvent,
  status: string,
  reason: string | null,
  extra: { workflowId?: string; digest?: string; trigger?: ScanTrigger } = {},
): Promise<number> {
  const r = await ctx.db.query<{ id: string }>(
    `INSERT INTO scan_events (tenant_id, trigger, repository, tag, artifact_digest, image, status, reason, workflow_id) VALUES ($1,$9,$2,$3,$4,$5,$6,$7,$8) RETURNING id`,
    [
      tenant,
      ev.repository ?? null,
      ev.tag ?? null,
      extra.digest ?? ev.digest ?? null,
      ev.image ?? null,
      status,
      reason,
      extra.workflowId ?? null,
      extra.trigger ?? 'push',
    ],
  );
  return Number(r.rows[0]!.id);
}

/** Acts on a registry push for this tenant and records the event. */
export async function handlePushEvent(ctx: AppContext, t: ScanWorkflows | null, tenant: string, actor: string, ev: PushEvent): Promise<PushResult> {
  if (!ev.image && !ev.repository && !ev.digest) throw badInput('push event needs image, repository or digest');
  const ignored = pushIgnoredReason(await autoScanConfig(ctx, tenant));
  if (ignored) return { eventId: await recordEvent(ctx, tenant, ev, 'ignored', ignored), status: 'ignored', reason: ignored };
  if (!t) throw unavailable('Temporal is not connected');
  let lastErr: StellaError | undefined;
  for (const image of pushCandidates(ev)) {
    try {
      const s = await startScan(ctx, t, tenant, { image, requestedBy: `push:${actor}`, trigger: 'push' });
      if (ev.digest && s.artifactDigest !== ev.digest) {
        const reason = `image ${image} is ${s.artifactDigest}, not the pushed digest ${ev.digest}`;
        const eventId = await recordEvent(ctx, tenant, ev, 'failed', reason, { digest: ev.digest });
        return { eventId, status: 'failed', reason, workflowId: s.workflowId };
      }
      const eventId = await recordEvent(ctx, tenant, ev, 'started', s.joined ? 'joined a running scan' : null, {
        workflowId: s.workflowId,
        digest: s.artifactDigest,
      });
      return { eventId, status: 'started', workflowId: s.workflowId, runId: s.runId, artifactDigest: s.artifactDigest, joined: s.joined };
    } catch (e) {
      if (!(e instanceof StellaError) || (e.code !== 'NOT_FOUND' && e.code !== 'BAD_INPUT')) throw e;
      lastErr = e;
    }
  }
  const reason = `image not available to the scanner: ${lastErr?.message ?? 'unknown'} (register it: stella image register <name> <path>)`;
  return { eventId: await recordEvent(ctx, tenant, ev, 'queued', reason), status: 'queued', reason };
}

/** What a registry webhook's events became: each push handled as above, other events recorded as ignored, pulls dropped. */
export async function handleWebhookEvents(
  ctx: AppContext,
  t: ScanWorkflows | null,
  tenant: string,
  actor: string,
  entries: readonly WebhookEntry[],
): Promise<{ results: PushResult[]; dropped: number }> {
  const results: PushResult[] = [];
  let dropped = 0;
  for (const e of entries) {
    if (e.kind === 'dropped') dropped++;
    else if (e.kind === 'ignored') results.push({ eventId: await recordEvent(ctx, tenant, e.event, 'ignored', e.reason), status: 'ignored', reason: e.reason });
    else results.push(await handlePushEvent(ctx, t, tenant, actor, e.event));
  }
  return { results, dropped };
}

/** Whether stella has scanned (or is scanning) this digest: a completed, reused or running scan run. */
async function hasScan(ctx: Pick<AppContext, 'db'>, tenant: string, digest: string): Promise<boolean> {
  const r = await ctx.db.query(`SELECT 1 FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2 AND status IN ('completed','reused','running') LIMIT 1`, [
    tenant,
    digest,
  ]);
  return r.rows.length > 0;
}

/**
 * The `promote` trigger: with auto-scan on and `promote` among its triggers, a promotion of a
 * digest stella never scanned starts (or joins) scanThenAttest for it, trigger 'promote', and
 * records the event. Null when the trigger is off or the digest has a scan already. The image
 * is the promotion's pinned reference (or catalogue name), else the digest's catalogue entry;
 * when neither is available to the scanner the event is queued with the reason.
 */
export async function handlePromoteTrigger(
  ctx: AppContext,
  t: ScanWorkflows,
  tenant: string,
  actor: string,
  p: { artifactDigest: string; image?: string },
): Promise<PushResult | null> {
  if (!acceptsPromote(await autoScanConfig(ctx, tenant))) return null;
  if (await hasScan(ctx, tenant, p.artifactDigest)) return null;
  const ev: PushEvent = { digest: p.artifactDigest, ...(p.image ? { image: p.image } : {}) };
  let lastErr: StellaError | undefined;
  for (const image of [p.image, p.artifactDigest].filter((x): x is string => !!x)) {
    try {
      const s = await startScan(ctx, t, tenant, { image, requestedBy: `promote:${actor}`, trigger: 'promote' });
      if (s.artifactDigest !== p.artifactDigest) {
        lastErr = badInput(`image ${image} is ${s.artifactDigest}, not the promoted digest ${p.artifactDigest}`);
        continue;
      }
      const eventId = await recordEvent(ctx, tenant, ev, 'started', s.joined ? 'joined a running scan' : null, {
        workflowId: s.workflowId,
        digest: s.artifactDigest,
        trigger: 'promote',
      });
      await audit(ctx.db, {
        tenant,
        actor,
        action: 'scan.requested',
        target: s.artifactDigest,
        details: { trigger: 'promote', eventId, workflowId: s.workflowId, runId: s.runId, joined: s.joined, image },
      });
      return { eventId, status: 'started', workflowId: s.workflowId, runId: s.runId, artifactDigest: s.artifactDigest, joined: s.joined };
    } catch (e) {
      if (!(e instanceof StellaError) || (e.code !== 'NOT_FOUND' && e.code !== 'BAD_INPUT')) throw e;
      lastErr = e;
    }
  }
  const reason = `image not available to the scanner: ${lastErr?.message ?? 'unknown'} (give --image <registry ref> or stella image register <name> <path>)`;
  return { eventId: await recordEvent(ctx, tenant, ev, 'queued', reason, { trigger: 'promote' }), status: 'queued', reason };
}

/**
 * Push events that arrived before their image was available to the scanner wait as
 * `queued`, and so do promote-trigger events of a digest the scanner could not reach;
 * registering the image starts them (once, joining one run per artifact; a push's trigger
 * wins when both wait).
 */
export async function startQueuedPushScans(
  ctx: AppContext,
  t: ScanWorkflows | null,
  tenant: string,
  image: { name: string; digest: string },
  actor: string,
): Promise<{ eventIds: number[]; workflowId: string } | null> {
  const cfg = await autoScanConfig(ctx, tenant);
  const triggers = [...(acceptsPush(cfg) ? ['push'] : []), ...(acceptsPromote(cfg) ? ['promote'] : [])];
  if (!triggers.length || !t) return null;
  const q = await ctx.db.query<{ id: string; trigger: ScanTrigger }>(
    `SELECT id, trigger FROM scan_events WHERE tenant_id=$1 AND status='queued' AND trigger = ANY($4)
       AND (image=$2 OR repository=$2 OR repository || ':' || tag = $2 OR artifact_digest=$3)`,
    [tenant, image.name, image.digest, triggers],
  );
  if (!q.rows.length) return null;
  const trigger: ScanTrigger = q.rows.some((x) => x.trigger === 'push') ? 'push' : 'promote';
  const started = await startScan(ctx, t, tenant, { image: image.name, requestedBy: `${trigger}:${actor}`, trigger });
  const ids = q.rows.map((x) => Number(x.id));
  await ctx.db.query(`UPDATE scan_events SET status='started', workflow_id=$3, artifact_digest=$4, reason=$5 WHERE tenant_id=$1 AND id = ANY($2)`, [
    tenant,
    ids,
    started.workflowId,
    started.artifactDigest,
    `started when ${image.name} was registered`,
  ]);
  return { eventIds: ids, workflowId: started.workflowId };
}

/** Auto-scan events that did not start a scan (newest first, at most 100). */
export async function pendingEvents(ctx: Pick<AppContext, 'db'>, tenant: string, artifact?: string): Promise<ScanEvent[]> {
  const params: unknown[] = [tenant];
  let where = `tenant_id=$1 AND status <> 'started'`;
  if (artifact) {
    params.push(artifact);
    where += ` AND artifact_digest=$2`;
  }
  const r = await ctx.db.query<ScanEventRow>(`SELECT * FROM scan_events WHERE ${where} ORDER BY received_at DESC LIMIT 100`, params);
  return r.rows.map((x) => ({
    id: Number(x.id),
    trigger: x.trigger,
    repository: x.repository,
    tag: x.tag,
    artifact: x.artifact_digest,
    image: x.image,
    status: x.status,
    reason: x.reason,
    receivedAt: new Date(x.received_at).toISOString(),
  }));
}

/**
 * Registry webhooks → push events (pure). `POST /events/push` takes stella's own body
 * (`{ image | repository, tag, digest }`), the distribution registry's notification envelope
 * (`application/vnd.docker.distribution.events.v1+json`: `{ events: [{ action, target, request }] }`)
 * and Harbor's webhook payload (`{ type: 'PUSH_ARTIFACT', event_data: { resources, repository } }`).
 * Each registry event becomes a push event naming the image by digest (`host/repo@sha256:…`), or
 * an ignored entry with its reason; pulls are dropped without a record (a registry reports every
 * pull, which would drown the events table).
 */
import type { PushEvent } from './events';

export const DISTRIBUTION_EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/** Manifest media types a push of an image (or index) carries; blob pushes are not images. */
const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface DistributionEvent {
  id?: string;
  action?: string;
  target?: { mediaType?: string; digest?: string; repository?: string; url?: string; tag?: string };
  request?: { host?: string };
}
export interface HarborPayload {
  type?: string;
  event_data?: {
    resources?: { digest?: string; tag?: string; resource_url?: string }[];
    repository?: { repo_full_name?: string; namespace?: string; name?: string };
  };
}

/** One registry event: act on it (a push event), record it as ignored, or drop it (a pull). */
export type WebhookEntry = { kind: 'push'; event: PushEvent } | { kind: 'ignored'; event: PushEvent; reason: string } | { kind: 'dropped'; reason: string };

/** The registry host of an event: the request's Host, else the target URL's. */
function hostOf(e: DistributionEvent): string | undefined {
  if (e.request?.host) return e.request.host;
  try {
    return e.target?.url ? new URL(e.target.url).host : undefined;
  } catch {
    return undefined;
  }
}

/** `host/repository@digest`, or undefined when a part is missing or malformed. */
export function pinnedRef(host: string | undefined, repository: string | undefined, digest: string | undefined): string | undefined {
  if (!host || !repository || !digest || !DIGEST.test(digest)) return undefined;
  return `${host}/${repository}@${digest}`;
}

/** The distribution registry's notification envelope, event by event. */
export function fromDistribution(events: readonly DistributionEvent[]): WebhookEntry[] {
  return events.map((e): WebhookEntry => {
    const t = e.target ?? {};
    const event: PushEvent = {
      ...(t.repository ? { repository: t.repository } : {}),
      ...(t.tag ? { tag: t.tag } : {}),
      ...(t.digest && DIGEST.test(t.digest) ? { digest: t.digest } : {}),
    };
    if (e.action === 'pull') return { kind: 'dropped', reason: 'pull event' };
    if (e.action !== 'push') return { kind: 'ignored', event, reason: `registry event ${e.action ?? '(no action)'} is not a push` };
    if (t.mediaType && !MANIFEST_TYPES.has(t.mediaType)) return { kind: 'dropped', reason: `push of a ${t.mediaType} blob, not an image manifest` };
    const image = pinnedRef(hostOf(e), t.repository, t.digest);
    if (!image) return { kind: 'ignored', event, reason: 'registry push event without host, repository and sha256 digest' };
    return { kind: 'push', event: { ...event, image } };
  });
}

/** Harbor's webhook payload: one entry per resource of a PUSH_ARTIFACT; other types are ignored. */
export function fromHarbor(p: HarborPayload): WebhookEntry[] {
  const repo = p.event_data?.repository;
  const repository = repo?.repo_full_name ?? (repo?.namespace && repo?.name ? `${repo.namespace}/${repo.name}` : undefined);
  const resources = p.event_data?.resources ?? [];
  const entries = resources.length ? resources : [{}];
  return entries.map((r): WebhookEntry => {
    const event: PushEvent = {
      ...(repository ? { repository } : {}),
      ...(r.tag ? { tag: r.tag } : {}),
      ...(r.digest && DIGEST.test(r.digest) ? { digest: r.digest } : {}),
    };
    if (p.type === 'PULL_ARTIFACT') return { kind: 'dropped', reason: 'pull event' };
    if (p.type !== 'PUSH_ARTIFACT') return { kind: 'ignored', event, reason: `Harbor event ${p.type ?? '(no type)'} is not PUSH_ARTIFACT` };
    // resource_url is `host/namespace/repo:tag` or `…@sha256:…`: the host is its first segment.
    const host = r.resource_url?.split('/')[0];
    const image = pinnedRef(host, repository, r.digest);
    if (!image) return { kind: 'ignored', event, reason: 'Harbor push without resource_url host, repository and sha256 digest' };
    return { kind: 'push', event: { ...event, image } };
  });
}

/** Which format a body is in (pure): stella's own, distribution's envelope or Harbor's payload. */
export function webhookEntries(body: unknown): WebhookEntry[] | null {
  if (!body || typeof body !== 'object') return null;
  const b = body as Record<string, unknown>;
  if (Array.isArray(b.events)) return fromDistribution(b.events as DistributionEvent[]);
  if (typeof b.type === 'string' && b.event_data && typeof b.event_data === 'object') return fromHarbor(b as HarborPayload);
  return null;
}

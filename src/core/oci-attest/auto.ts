/**
 * Publishing on promotion (opt-in per environment): a tenant lists the environments whose
 * promotions push stella's attestations to the image's registry (setting `registry.publish`).
 * The promotion workflow asks after it promoted; this decides (pure) and publishes.
 */
import { z } from 'zod';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { getSetting, putSetting } from '../settings/settings';
import { badInput } from '../../lib/errors';
import { isRegistryReference } from '../scan/registry';
import { importFromRegistry } from './discover';
import { publishAttestations, type PublishResult } from './publish';

export const PUBLISH_SETTING = 'registry.publish';
const ENV_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const PublishConfig = z.strictObject({
  /** Promotions to these environments publish (empty: none). */
  environments: z.array(z.string().regex(ENV_NAME, 'expected an environment name (lowercase letters, digits, . _ -)')).max(64),
  /** Plain HTTP to the image's registry (a lab registry). */
  insecure: z.boolean(),
});
export type PublishConfig = z.infer<typeof PublishConfig>;
const NONE: PublishConfig = { environments: [], insecure: false };

export async function publishConfig(ctx: AppContext, tenant: string): Promise<PublishConfig> {
  const v = PublishConfig.safeParse(await getSetting(ctx.db, tenant, PUBLISH_SETTING));
  return v.success ? v.data : NONE;
}

export async function setPublishConfig(ctx: AppContext, tenant: string, value: unknown, actor: string): Promise<PublishConfig> {
  const v = PublishConfig.safeParse(value);
  if (!v.success) throw badInput(`invalid ${PUBLISH_SETTING}: ${v.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  const cfg = { environments: [...new Set(v.data.environments)].sort(), insecure: v.data.insecure };
  await putSetting(ctx.db, tenant, PUBLISH_SETTING, cfg);
  await audit(ctx.db, { tenant, actor, action: 'settings.registry-publish', target: PUBLISH_SETTING, details: cfg });
  return cfg;
}

/**
 * Whether a promotion to `env` of `imageRef` publishes: the environment is opted in and the image
 * names a registry (the scan feature's rule: the first component is a host; catalogue names and
 * paths on the worker are not).
 */
export function publishDecision(cfg: PublishConfig, env: string, imageRef: string | null): { publish: true } | { publish: false; reason: string } {
  if (!cfg.environments.includes(env)) return { publish: false, reason: `environment ${env} does not publish (${PUBLISH_SETTING})` };
  if (!imageRef) return { publish: false, reason: 'the promotion names no image reference' };
  if (!isRegistryReference(imageRef) || imageRef.startsWith('sha256:')) return { publish: false, reason: `${imageRef} is not a registry reference` };
  return { publish: true };
}

/** The promotion workflow's publish step (after `promoted`). */
export async function publishAfterPromotion(
  ctx: AppContext,
  q: { tenant: string; artifactDigest: string; imageRef: string | null; toEnv: string; actor: string },
): Promise<{ published: boolean; reason: string | null; result: PublishResult | null }> {
  const cfg = await publishConfig(ctx, q.tenant);
  const d = publishDecision(cfg, q.toEnv, q.imageRef);
  if (!d.publish) return { published: false, reason: d.reason, result: null };
  const result = await publishAttestations(ctx, q.tenant, { artifact: q.artifactDigest, image: q.imageRef!, insecure: cfg.insecure, actor: q.actor });
  return { published: true, reason: null, result };
}

/**
 * The promotion's look in the registry when evidence is missing: the attestations attached to the
 * image (referrers, cosign `.att`) that verify are imported, so a pipeline's cosign provenance
 * meets the gate without a manual `attest import`. Only for registry references; nothing is stored
 * for what fails verification.
 */
export async function importForPromotion(
  ctx: AppContext,
  q: { tenant: string; artifactDigest: string; imageRef: string | null; actor: string },
): Promise<{ imported: number; failed: number; reason: string | null }> {
  if (!q.imageRef || !isRegistryReference(q.imageRef) || q.imageRef.startsWith('sha256:'))
    return { imported: 0, failed: 0, reason: 'the promotion names no registry image' };
  const image = q.imageRef.includes('@') ? q.imageRef : q.imageRef.replace(/(:[^/:]+)?$/, `@${q.artifactDigest}`);
  const r = await importFromRegistry(ctx, q.tenant, { image, actor: q.actor });
  if (r.digest !== q.artifactDigest) return { imported: 0, failed: 0, reason: `${image} is ${r.digest}, not ${q.artifactDigest}` };
  return { imported: r.items.filter((i) => i.created).length, failed: r.failed, reason: null };
}

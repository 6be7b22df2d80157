/** Attestations in registries: the promotion's publish step (opt-in per environment). */
import type { AppContext } from '../src/core/context';
import { importForPromotion, publishAfterPromotion } from '../src/core/oci-attest/auto';
import { classified } from './failure';

export function createOciAttestActivities(ctx: AppContext) {
  return {
    /** Evidence missing: import the verified attestations the image's registry holds for the digest (nothing stored for the rest). */
    async importRegistryEvidence(q: Parameters<typeof importForPromotion>[1]) {
      return classified(() => importForPromotion(ctx, q));
    },
    /** After a promotion: push stella's attestations to the image's registry when the environment opted in (else a no-op with the reason). */
    async publishAfterPromotion(q: Parameters<typeof publishAfterPromotion>[1]) {
      const r = await classified(() => publishAfterPromotion(ctx, q));
      return {
        published: r.published,
        reason: r.reason,
        repository: r.result?.repository ?? null,
        pushed: r.result?.items.filter((i) => i.pushed).length ?? 0,
      };
    },
  };
}

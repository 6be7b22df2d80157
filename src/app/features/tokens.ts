import type { Feature } from '../feature';

/** Access-token hygiene: revocation of tokens (jti) and token keys (kid). Issuing lives in src/core/identity/issue.ts. */
export const tokensFeature: Feature = {
  name: 'tokens',
  routes: async () => (await import('../../api/routes/revocations')).registerRevocationRoutes,
};

import type { Feature } from '../feature';

/** Attestations in OCI registries: push stella's (referrers / cosign tag), discover and import a pipeline's. */
export const ociAttestFeature: Feature = {
  name: 'oci-attest',
  routes: async () => (await import('../../api/routes/oci-attest')).registerOciAttestRoutes,
};

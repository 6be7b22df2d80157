import type { Feature } from '../feature';
import { identityDoctorChecks } from '../../core/identity/doctor';

/** Identity for pipelines and people: OIDC access tokens, trusted publishing, the token endpoint. */
export const identityFeature: Feature = {
  name: 'identity',
  routes: async () => (await import('../../api/routes/auth')).registerAuthRoutes,
  doctorChecks: identityDoctorChecks,
};

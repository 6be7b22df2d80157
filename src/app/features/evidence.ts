import type { Feature } from '../feature';

/** Evidence items: content-addressed ingest, retrieval, metadata. */
export const evidenceFeature: Feature = {
  name: 'evidence',
  routes: async () => (await import('../../api/routes/evidence')).registerEvidenceRoutes,
};

/** Transitional: batched ingest is the one ingest in src/core/evidence/ingest.ts; mapLimit lives in src/lib/concurrency. */
export { mapLimit } from '../../lib/concurrency';

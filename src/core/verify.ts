/** Transitional: integrity verification moved to src/core/locker/verify.ts (kept for importers outside the locker feature). */
export * from './locker/verify';

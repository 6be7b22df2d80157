/** Retention, legal holds, tiering, purge, archive and cleanup (issue 7). */
export * from './policy';
export * from './holds';
export * from './purge';
export * from './archive';

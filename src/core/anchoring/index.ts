/** Merkle anchoring over PostgreSQL (issue 6): the pure library is src/merkle. */
export * from './source';
export * from './store';
export * from './trust';
export * from './create';
export * from './verify';
export * from './export';
export * from './offline';
export * from './inspect';
export * from './checkpoint';
export * from './timestamp';
export * from './witness';
export * from './tlog';

/** RFC 6962 / RFC 9162 Merkle log primitives and signed anchors. Pure: no DB, no Temporal. */
export * from './errors';
export * from './hash';
export * from './tree';
export * from './frontier';
export * from './source';
export * from './leaf';
export * from './anchor';
export * from './checkpoint';
export * from './tiles';

// The worker bundles this file: every workflow type stella runs is exported from here.
export * from './evidence';
export * from './locker';
export * from './promotion';
export * from './retention';
export * from './replay';
export * from './scan';
export * from './anchoring';
export * from './backup';

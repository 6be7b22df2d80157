/** Archive layer: deterministic tar writing, safe reading/extraction, compression, manifests. */
export * from './errors';
export { archivePathProblem, comparePaths, MAX_COMPONENT_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH } from './paths';
export * from './compress';
export {
  buildTar,
  createTarStream,
  writeTarFile,
  type TarBufferEntry,
  type TarFileOptions,
  type TarFileSource,
  type TarStream,
  type TarStreamStats,
  type TarWriteOptions,
} from './tar-write';
export * from './tar-read';
export * from './manifest';
export { normaliseMemberName, TarIndex, type TarMember } from './tar-index';

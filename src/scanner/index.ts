/** Public API of the built-in image scanner. */
export { SCANNER_NAME, SCANNER_VERSION, scanImage, scanReport, ScanReportSchema, type ScanOptions, type ScanReport, type ScanResult } from './scan';
export { openImage, type ImageFormat, type LayerRef, type OpenedImage, type OpenImageOptions, type Platform } from './oci';
export { DEFAULT_LIMITS, ImageFilesystem, readImageFilesystem, type LayerLimits, type LayerStat, type ReadFilesystemOptions } from './layers';
export { detectPackages, wantsFile, type Detection, type Distro, type Ecosystem, type Package } from './detectors/index';
export { buildCycloneDx, sbomBytes, validateCycloneDx, type CycloneDxBom, type SbomInput } from './cyclonedx';
export {
  countBySeverity,
  evaluateRange,
  feedFromRecords,
  loadFeed,
  matchPackages,
  severityOf,
  type Feed,
  type Finding,
  type LoadFeedOptions,
  type OsvRecord,
  type SeverityCounts,
} from './osv';
export type { Severity } from './cvss';
export * from './errors';

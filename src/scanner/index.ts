/** Public API of the built-in image scanner. */
export {
  inventoryImage,
  SCANNER_NAME,
  SCANNER_VERSION,
  scanImage,
  scanInventory,
  scanReport,
  ScanReportSchema,
  type Inventory,
  type ImageSource,
  type InventoryOptions,
  type ScanOptions,
  type ScanReport,
  type ScanResult,
} from './scan';
export { openImage, type ImageFormat, type LayerRef, type OpenedImage, type OpenImageOptions, type Platform } from './oci';
export {
  DEFAULT_LIMITS,
  ImageFilesystem,
  readImageFilesystem,
  type FileExtractor,
  type LayerLimits,
  type LayerStat,
  type ReadFilesystemOptions,
} from './layers';
export {
  detectPackages,
  ECOSYSTEMS,
  fileExtractor,
  wantsFile,
  type Detection,
  type Distro,
  type Ecosystem,
  type Package,
  type Unidentified,
} from './detectors/index';
export { buildCycloneDx, sbomBytes, validateCycloneDx, type CycloneDxBom, type SbomInput } from './cyclonedx';
export { buildSpdx, spdxBytes, spdxFromResult, type SpdxDocument } from './spdx';
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

/**
 * Scanner identity, recorded in every SBOM and scan report. Bump SCANNER_VERSION whenever
 * detection, SBOM shape or matching logic changes: replays pin it, and the same
 * (image, feed, version, timestamp) must reproduce byte-identical output.
 */
export const SCANNER_NAME = 'stella-scanner';
export const SCANNER_VERSION = '1.2.0';

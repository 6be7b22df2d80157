import { describe, expect, it } from 'vitest';
import { decideScannerSetting } from '../src/core/scan/config';
import { pushCandidates, pushIgnoredReason } from '../src/core/scan/events';
import { isScanWorkflowIdOf, scanWorkflowId } from '../src/temporal/names';

/** The scan feature's pure decisions, on fixture facts (no servers). */
describe('scanner settings', () => {
  const off = { enabled: false, triggers: [] };
  it('turns auto-scan on, sets triggers (deduplicated) and the engine', () => {
    expect(decideScannerSetting(off, 'auto_scan.enabled', 'true')).toEqual({ autoScan: { enabled: true, triggers: [] } });
    expect(decideScannerSetting(off, 'auto_scan.triggers', 'push, promote,push')).toEqual({ autoScan: { enabled: false, triggers: ['push', 'promote'] } });
    expect(decideScannerSetting(off, 'engine', 'trivy')).toEqual({ engine: 'trivy' });
  });
  it('refuses unknown keys, triggers, engines and non-boolean switches with the accepted values', () => {
    expect(() => decideScannerSetting(off, 'auto_scan.enabled', 'yes')).toThrow(/true or false/);
    expect(() => decideScannerSetting(off, 'auto_scan.triggers', 'push,bogus')).toThrow(/unknown trigger\(s\) bogus/);
    expect(() => decideScannerSetting(off, 'engine', 'grype')).toThrow(/builtin, syft, trivy/);
    expect(() => decideScannerSetting(off, 'colour', 'blue')).toThrow(/unknown scanner setting/);
  });
});

describe('push events', () => {
  it('are ignored unless auto-scan is on and takes pushes, with the reason and the fix', () => {
    expect(pushIgnoredReason({ enabled: false, triggers: ['push'] })).toContain('stella scanner config set auto_scan.enabled true');
    expect(pushIgnoredReason({ enabled: true, triggers: ['promote'] })).toBe('push is not in auto_scan.triggers (promote)');
    expect(pushIgnoredReason({ enabled: true, triggers: ['push'] })).toBeNull();
  });
  it('try the image, then repository:tag, the repository, the digest', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(pushCandidates({ image: 'app:1', repository: 'r/app', tag: '1', digest })).toEqual(['app:1', 'r/app:1', 'r/app', digest]);
    expect(pushCandidates({ repository: 'r/app' })).toEqual(['r/app']);
  });
});

describe('scan workflow ids', () => {
  it('embed tenant and artifact hex, so requests for one artifact join one run', () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    expect(scanWorkflowId('acme', digest)).toBe(`scan-acme-${'b'.repeat(64)}`);
    expect(isScanWorkflowIdOf('acme', scanWorkflowId('acme', digest))).toBe(true);
    // A tenant whose name extends another's: neither owns the other's scans.
    expect(isScanWorkflowIdOf('acme', scanWorkflowId('acme-eu', digest))).toBe(false);
    expect(isScanWorkflowIdOf('acme-eu', scanWorkflowId('acme', digest))).toBe(false);
  });
});

import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig, writeConfigValue, ConfigError, parseDuration } from '../src/config';

const dataDir = () => mkdtempSync(join(tmpdir(), 'cfg-'));

describe('config', () => {
  it('defaults to the embedded stack: fs blobs under the data dir, default tenant', () => {
    const d = dataDir();
    const c = loadConfig({ STELLA_DATA_DIR: d });
    expect(c.blob).toEqual({ kind: 'fs', path: join(d, 'evidence'), replicaPath: undefined });
    expect(c.tenant).toBe('default');
    expect(c.temporal).toMatchObject({ address: undefined, namespace: 'default', taskQueue: 'stella', rpcTimeoutMs: 5000, uiUrl: 'http://127.0.0.1:8233' });
    expect(c.temporal.profile).toMatchObject({ apiKey: undefined, tls: undefined });
    expect(c.worker).toEqual({ queues: ['control', 'heavy'], controlConcurrency: 20, heavyConcurrency: 2 });
    expect(c.api.url).toBe('http://127.0.0.1:8787');
  });

  it.each([
    ['STELLA_API_PORT', '70000'],
    ['STELLA_TEMPORAL_ADDRESS', 'no-port'],
    ['DATABASE_URL', 'mysql://x'],
    ['STELLA_BLOB_KIND', 'ftp'],
    ['STELLA_ANCHOR_INTERVAL', 'soon'],
    ['STELLA_VERIFY_SAMPLE_RATE', '2'],
  ])('a wrong %s stops start-up with one line naming it', (name, value) => {
    let err: unknown;
    try {
      loadConfig({ STELLA_DATA_DIR: dataDir(), [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain(name);
    expect(msg).not.toContain('\n');
  });

  it('requires a bucket for s3', () => {
    expect(() => loadConfig({ STELLA_DATA_DIR: dataDir(), STELLA_BLOB_KIND: 's3' })).toThrow(/STELLA_S3_BUCKET/);
  });

  it('config set writes runbook keys to the file and loadConfig applies them; env wins', () => {
    const d = dataDir();
    writeConfigValue(d, 'EvidenceLocker:Path', '/var/lib/stellaops/evidence');
    expect(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'))).toEqual({ 'EvidenceLocker:Path': '/var/lib/stellaops/evidence' });
    expect(loadConfig({ STELLA_DATA_DIR: d }).blob).toMatchObject({ kind: 'fs', path: '/var/lib/stellaops/evidence' });
    expect(loadConfig({ STELLA_DATA_DIR: d, STELLA_BLOB_PATH: '/elsewhere' }).blob).toMatchObject({ path: '/elsewhere' });
    expect(() => writeConfigValue(d, 'Api:Port', 'eighty')).toThrow(ConfigError);
    expect(() => writeConfigValue(d, 'No:Such', 'x')).toThrow(/unknown setting/);
  });

  it('parses durations', () => {
    expect(parseDuration('6h')).toBe(6 * 3600_000);
    expect(parseDuration('30s')).toBe(30_000);
    expect(() => parseDuration('6 hours')).toThrow();
  });
});

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfigError, loadConfig } from '../src/config';
import { connectTemporal, ensureSearchAttributesBestEffort, temporalConnectionOptions, temporalSecurity } from '../src/temporal/client';
import { SEARCH_ATTRIBUTES } from '../src/temporal/names';

/**
 * Temporal connection settings (issue 16): STELLA_TEMPORAL_* over TEMPORAL_* over the Temporal
 * profile (temporal.toml), and a real TLS / mTLS connection. The dev server has no TLS flags, so a
 * TLS-terminating proxy (node:tls → the dev server's plaintext port) with a test CA stands in front.
 */
const scratch = () => mkdtempSync(join(inject('scratch'), 'tconn-'));
const base = () => ({ STELLA_DATA_DIR: scratch() });

describe('Temporal connection settings', () => {
  it('STELLA_TEMPORAL_* win over TEMPORAL_*, which win over the profile file', () => {
    const dir = scratch();
    const toml = join(dir, 'temporal.toml');
    writeFileSync(
      toml,
      [
        '[profile.default]',
        'address = "file-default:7233"',
        '',
        '[profile.cloud]',
        'address = "acme.a1b2c.tmprl.cloud:7233"',
        'namespace = "acme.a1b2c"',
        'api_key = "k-123"',
      ].join('\n'),
    );
    expect(loadConfig({ ...base(), TEMPORAL_CONFIG_FILE: toml }).temporal).toMatchObject({ address: 'file-default:7233', namespace: 'default' });
    const cloud = loadConfig({ ...base(), TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud' });
    expect(cloud.temporal).toMatchObject({ address: 'acme.a1b2c.tmprl.cloud:7233', namespace: 'acme.a1b2c', profile: { apiKey: 'k-123', name: 'cloud' } });
    // An API key alone turns TLS on (Temporal Cloud).
    expect(temporalSecurity(cloud)).toEqual({ apiKey: 'k-123', tls: true });
    const env = loadConfig({ ...base(), TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud', TEMPORAL_ADDRESS: 'env:7233', TEMPORAL_NAMESPACE: 'env-ns' });
    expect(env.temporal).toMatchObject({ address: 'env:7233', namespace: 'env-ns' });
    const stella = loadConfig({ ...base(), TEMPORAL_ADDRESS: 'env:7233', STELLA_TEMPORAL_ADDRESS: 'stella:7233', STELLA_TEMPORAL_NAMESPACE: 'ns1' });
    expect(stella.temporal).toMatchObject({ address: 'stella:7233', namespace: 'ns1' });
  });

  it('an unknown profile or a bad TEMPORAL_ADDRESS stops start-up with one line naming it', () => {
    const bad = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base(), ...env });
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    };
    const p = bad({ TEMPORAL_PROFILE: 'nope' });
    expect(p).toBeInstanceOf(ConfigError);
    expect(p.message).toMatch(/TEMPORAL_PROFILE: .*nope/);
    expect(p.message).not.toContain('\n');
    expect(bad({ TEMPORAL_ADDRESS: 'no-port' }).message).toMatch(/^invalid configuration: TEMPORAL_ADDRESS: expected host:port/);
  });

  it('a missing certificate file is named when connecting', () => {
    const cfg = loadConfig({ ...base(), TEMPORAL_ADDRESS: '127.0.0.1:1', TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/nonexistent/ca.pem' });
    expect(() => temporalSecurity(cfg)).toThrow(/certificate or key.*TEMPORAL_TLS_/);
  });
});

describe('TLS and mTLS to a real Temporal (TLS proxy in front of the dev server)', () => {
  let dir: string;
  const proxies: Server[] = [];
  let tlsPort = 0;
  let mtlsPort = 0;

  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

  /** node:tls → TCP to the dev server; ALPN h2, as gRPC clients require. */
  function proxy(opts: { mtls: boolean }): Promise<number> {
    const [host, port] = inject('temporalAddress').split(':') as [string, string];
    const server = createServer(
      {
        key: readFileSync(join(dir, 'server.key')),
        cert: readFileSync(join(dir, 'server.pem')),
        ALPNProtocols: ['h2'],
        ...(opts.mtls ? { ca: readFileSync(join(dir, 'ca.pem')), requestCert: true, rejectUnauthorized: true } : {}),
      },
      (tls: TLSSocket) => {
        const up = netConnect(Number(port), host);
        tls.pipe(up).pipe(tls);
        const close = () => {
          tls.destroy();
          up.destroy();
        };
        tls.on('error', close);
        up.on('error', close);
      },
    );
    server.on('tlsClientError', () => {});
    proxies.push(server);
    return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  }

  beforeAll(async () => {
    dir = scratch();
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=stella test CA');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:temporal.test,IP:127.0.0.1\n');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=temporal.test');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'san.ext',
    );
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=stella-worker');
    // v3 (an extension file): rustls, under the worker's native connection, refuses v1 certificates.
    writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'client.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'client.pem',
      '-days',
      '2',
      '-extfile',
      'client.ext',
    );
    tlsPort = await proxy({ mtls: false });
    mtlsPort = await proxy({ mtls: true });
  });
  afterAll(async () => {
    for (const p of proxies) await new Promise((r) => p.close(r));
  });

  const cfgFor = (port: number, tls: Record<string, string>) =>
    loadConfig({ ...base(), TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_NAMESPACE: 'default', STELLA_TEMPORAL_RPC_TIMEOUT: '5s', ...tls });

  it('connects with the server CA (client and worker connections), and answers RPCs through TLS', async () => {
    const cfg = cfgFor(tlsPort, { TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem') });
    const t = await connectTemporal(cfg);
    try {
      const ns = await t.connection.workflowService.describeNamespace({ namespace: 'default' });
      expect(ns.namespaceInfo?.name).toBe('default');
    } finally {
      await t.connection.close();
    }
    const native = await NativeConnection.connect({ address: cfg.temporal.address!, ...temporalSecurity(cfg) });
    await native.close();
  });

  it('names the server for a certificate issued to another host (TEMPORAL_TLS_SERVER_NAME)', async () => {
    const cfg = cfgFor(tlsPort, { TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem'), TEMPORAL_TLS_SERVER_NAME: 'temporal.test' });
    const t = await connectTemporal(cfg);
    await t.connection.close();
  });

  it('without the CA: refuses with one line naming the target and the setting to fix', async () => {
    const cfg = cfgFor(tlsPort, { TEMPORAL_TLS: 'true' });
    const err = await connectTemporal(cfg).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(new RegExp(`^cannot connect to Temporal at 127\\.0\\.0\\.1:${tlsPort} namespace default \\(TLS\\)`));
    // The TLS handshake's own reason, not only "failed to connect before the deadline".
    expect(err!.message).toMatch(/TLS handshake failed: .*(self[- ]signed|unable to (get|verify))/i);
    expect(err!.message).toContain('TEMPORAL_TLS_SERVER_CA_CERT_PATH');
    expect(err!.message).not.toContain('\n');
  });

  it('mTLS: a client certificate is required by the server and presented from TEMPORAL_TLS_CLIENT_*', async () => {
    const ca = { TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem') };
    const withCert = cfgFor(mtlsPort, { ...ca, TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'client.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'client.key') });
    const t = await connectTemporal(withCert);
    try {
      expect((await t.connection.workflowService.describeNamespace({ namespace: 'default' })).namespaceInfo?.name).toBe('default');
    } finally {
      await t.connection.close();
    }
    const native = await NativeConnection.connect({ address: withCert.temporal.address!, ...temporalSecurity(withCert) });
    await native.close();

    // Same server, no client certificate: the handshake is refused.
    const noCert = cfgFor(mtlsPort, ca);
    const lazy = Connection.lazy(temporalConnectionOptions(noCert));
    const refused = await new Client({ connection: lazy }).workflowService.describeNamespace({ namespace: 'default' }).then(
      () => null,
      (e: Error) => e,
    );
    await lazy.close();
    expect(refused).toBeInstanceOf(Error);
  });
});

describe('search attributes, best effort', () => {
  it('where the operator API refuses, start-up gets one warning naming every attribute and how to add them', async () => {
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      // A namespace this server does not have: the operator API answers NOT_FOUND, as Cloud answers PERMISSION_DENIED.
      const w = await ensureSearchAttributesBestEffort(connection, 'no-such-namespace');
      expect(w).not.toBeNull();
      for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) expect(w).toContain(`${name} (${type})`);
      expect(w).toContain('tcld namespace search-attributes add -n no-such-namespace');
      expect(w).toContain('--sa "StellaMissingEvidence=KeywordList"');
      expect(w).not.toContain('\n');
      // Where allowed, they are registered (KeywordList included) and nothing is reported.
      expect(await ensureSearchAttributesBestEffort(connection, 'default')).toBeNull();
      const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      expect(Object.keys(listed.customAttributes ?? {})).toEqual(expect.arrayContaining(Object.keys(SEARCH_ATTRIBUTES)));
    } finally {
      await connection.close();
    }
  });
});

/**
 * The OCI distribution client (https://github.com/opencontainers/distribution-spec) over Node's
 * fetch: manifests (GET/HEAD/PUT, size-capped, digest-checked), blobs (streamed through a
 * sha256 check, redirects followed without ever downgrading to plain HTTP), monolithic blob
 * upload, the OCI 1.1 referrers API with the referrers-tag fallback, multi-arch resolution,
 * and auth (anonymous, basic, the registry token flow) with credentials from a docker
 * config.json. Plain HTTP only for hosts listed as insecure.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { sha256Digest } from '../lib/hash';
import { AuthFile, basicHeader, type Challenge, type Credentials, parseChallenge, type Token, TokenCache } from './auth';
import { RegistryError } from './errors';
import { MEDIA_TYPES } from '../scanner/oci';
import { isSha256Digest, manifestTarget, pinnedReference, toReference, withTarget } from './reference';
import type { FetchedManifest, ImageReference, OciDescriptor, RegistryClient, RegistryClientOptions, ResolvedReference } from './types';

export { MEDIA_TYPES };
const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);
const MANIFEST_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerList];

export const DEFAULT_MAX_MANIFEST_BYTES = 4 << 20;
const DEFAULT_MAX_BLOB_BYTES = 16 << 20;
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;
const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** process.arch → OCI architecture names. */
const OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The worker's own platform: `linux/<arch>` with the OCI architecture name. */
export function defaultPlatform(): string {
  return `linux/${OCI_ARCH[process.arch] ?? process.arch}`;
}

export function parsePlatform(s: string): Platform {
  const m = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/.exec(s);
  if (!m) throw new RegistryError('BAD_PLATFORM', `platform ${JSON.stringify(s)} is not os/arch[/variant] (e.g. linux/amd64, linux/arm64/v8)`, { platform: s });
  return { os: m[1]!, architecture: m[2]!, ...(m[3] ? { variant: m[3] } : {}) };
}

export function formatPlatform(p: { os?: string; architecture?: string; variant?: string } | undefined): string {
  return [p?.os ?? '?', p?.architecture ?? '?', p?.variant].filter(Boolean).join('/');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function envList(name: string): string[] {
  return (process.env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|EPROTO$)/;

/** A fetch failure (no HTTP answer) as a RegistryError naming the host and what we were doing. */
function networkError(e: unknown, host: string, what: string): RegistryError {
  if (e instanceof RegistryError) return e;
  const err = e as Error & { cause?: { code?: string; message?: string }; code?: string };
  const code = err.cause?.code ?? err.code ?? (err.name === 'AbortError' || err.name === 'TimeoutError' ? 'TIMEOUT' : undefined);
  const detail = err.cause?.message ?? err.message;
  if (code === 'ENOTFOUND')
    return new RegistryError('UNREACHABLE', `${what}: unknown registry host ${host} (DNS lookup failed)`, { host, reason: code }, { cause: e });
  if (code === 'ECONNREFUSED')
    return new RegistryError('UNREACHABLE', `${what}: registry ${host} refused the connection`, { host, reason: code }, { cause: e });
  if (code === 'TIMEOUT') return new RegistryError('UNREACHABLE', `${what}: registry ${host} did not answer in time`, { host, reason: code }, { cause: e });
  if ((code && TLS_CODES.test(code)) || /SSL|TLS|certificate/i.test(detail ?? '')) {
    return new RegistryError(
      'INSECURE',
      `${what}: TLS with registry ${host} failed (${code ?? detail}); if it serves plain HTTP, list it as an insecure registry (--insecure-registry / STELLA_INSECURE_REGISTRIES)`,
      { host, reason: code },
      { cause: e },
    );
  }
  return new RegistryError('UNREACHABLE', `${what}: cannot reach registry ${host} (${code ?? detail})`, { host, reason: code }, { cause: e });
}

async function drain(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // already consumed or errored
  }
}

/** Read a response body, refusing (and cancelling) as soon as it exceeds `max`; a body that stalls for `idleMs` or breaks off is UNREACHABLE. */
async function readBounded(res: Response, max: number, what: string, idleMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
  const cl = res.headers.get('content-length');
  if (cl !== null && Number(cl) > max) {
    await drain(res);
    throw new RegistryError('TOO_LARGE', `${what}: ${cl} bytes, more than the ${max}-byte limit`, { limit: max, size: Number(cl) });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      let step: Awaited<ReturnType<typeof reader.read>>;
      try {
        step = await Promise.race([
          reader.read(),
          new Promise<never>((_, rej) => {
            timer = setTimeout(() => rej(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })), idleMs);
          }),
        ]);
      } catch (e) {
        await reader.cancel().catch(() => undefined);
        throw networkError(e, new URL(res.url || 'http://registry').host, `${what} (while reading the answer)`);
      } finally {
        clearTimeout(timer);
      }
      if (step.done) break;
      const value = step.value;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => undefined);
        throw new RegistryError('TOO_LARGE', `${what}: more than the ${max}-byte limit`, { limit: max });
      }
      chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
  }
  return Buffer.concat(chunks, total);
}

/** The registry's error body (`{errors: [{code, message}]}`), for messages. */
function errorDetail(text: string): { code?: string; message?: string } {
  try {
    const j = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = j.errors?.[0];
    if (first) return { ...(first.code ? { code: String(first.code) } : {}), ...(first.message ? { message: String(first.message) } : {}) };
  } catch {
    // not JSON
  }
  return {};
}

/**
 * A pass-through that hashes what flows and fails the stream (RegistryError DIGEST_MISMATCH)
 * instead of ending it when the bytes do not match the digest or the announced size.
 */
export class DigestVerifier extends Transform {
  private readonly hash = createHash('sha256');
  private n = 0;
  constructor(
    private readonly expected: string,
    private readonly size: number | undefined,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    if (this.size !== undefined && this.n > this.size) {
      cb(new RegistryError('DIGEST_MISMATCH', `${this.what}: more than the ${this.size} bytes its descriptor states`, { expected: this.expected }));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.size !== undefined && this.n !== this.size) {
      cb(new RegistryError('DIGEST_MISMATCH', `${this.what}: ${this.n} bytes received, its descriptor states ${this.size}`, { expected: this.expected }));
      return;
    }
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.expected) {
      cb(
        new RegistryError('DIGEST_MISMATCH', `${this.what}: digest mismatch (expected ${this.expected}, got ${got})`, { expected: this.expected, actual: got }),
      );
      return;
    }
    cb();
  }
}

interface RequestInit2 {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  push?: boolean;
}

export interface ManifestHead {
  digest?: string;
  mediaType?: string;
  size?: number;
}

export class OciRegistryClient implements RegistryClient {
  private readonly insecure: Set<string>;
  private readonly maxManifestBytes: number;
  private readonly timeoutMs: number;
  private readonly authFilePath: string | undefined;
  private authFile?: Promise<AuthFile>;
  private readonly tokens = new TokenCache();
  /** Per host: the last auth challenge, so later requests authenticate up front. */
  private readonly challenges = new Map<string, Challenge>();
  private readonly referrersSupport = new Map<string, boolean>();

  constructor(opts: RegistryClientOptions = {}) {
    this.insecure = new Set([...(opts.insecureRegistries ?? []), ...envList('STELLA_INSECURE_REGISTRIES')]);
    this.maxManifestBytes = opts.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.authFilePath = opts.authFile ?? (process.env.STELLA_REGISTRY_AUTH_FILE || undefined);
  }

  private auth(): Promise<AuthFile> {
    this.authFile ??= AuthFile.load(this.authFilePath).catch((e: unknown) => {
      this.authFile = undefined;
      throw e;
    });
    return this.authFile;
  }

  private base(host: string): string {
    return `${this.insecure.has(host) ? 'http' : 'https'}://${host}`;
  }

  /** One HTTP exchange with redirects followed by hand: never https → http unless the target host is listed as insecure; credentials stay on their origin. */
  private async send(url: URL, init: { method: string; headers: Record<string, string>; body?: Buffer }, host: string, what: string): Promise<Response> {
    let current = url;
    let method = init.method;
    let body = init.body;
    const headers = { ...init.headers };
    for (let hop = 0; ; hop++) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), this.timeoutMs);
      let res: Response;
      try {
        res = await fetch(current, {
          method,
          headers,
          redirect: 'manual',
          signal: ac.signal,
          ...(body !== undefined ? { body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) } : {}),
        });
      } catch (e) {
        throw networkError(ac.signal.aborted ? Object.assign(new Error('timeout'), { code: 'TIMEOUT' }) : e, current.host, what);
      } finally {
        clearTimeout(timer);
      }
      if (![301, 302, 303, 307, 308].includes(res.status)) return res;
      const loc = res.headers.get('location');
      await drain(res);
      if (!loc) throw new RegistryError('PROTOCOL', `${what}: registry ${host} redirected without a Location`, { host });
      if (hop >= MAX_REDIRECTS) throw new RegistryError('PROTOCOL', `${what}: more than ${MAX_REDIRECTS} redirects from registry ${host}`, { host });
      const next = new URL(loc, current);
      if (next.protocol !== 'https:' && next.protocol !== 'http:')
        throw new RegistryError('PROTOCOL', `${what}: redirect to unsupported URL scheme ${next.protocol}`, { host });
      if (next.protocol === 'http:' && !this.insecure.has(next.host)) {
        throw new RegistryError('INSECURE', `${what}: registry ${host} redirected to plain HTTP (${next.host}), which is not listed as an insecure registry`, {
          host,
        });
      }
      if (next.origin !== current.origin) delete headers.Authorization;
      if (res.status === 303) {
        method = 'GET';
        body = undefined;
      }
      current = next;
    }
  }

  private async authorization(host: string, scope: string, fresh: boolean, what: string): Promise<string | undefined> {
    const ch = this.challenges.get(host);
    if (!ch) return undefined;
    const creds = (await this.auth()).get(host);
    if (ch.scheme === 'basic') return creds?.username !== undefined ? basicHeader(creds) : undefined;
    if (ch.scheme !== 'bearer') return undefined;
    const key = this.tokens.key(ch, scope);
    if (!fresh) {
      const t = this.tokens.get(key);
      if (t) return `Bearer ${t}`;
    }
    const t = await this.fetchToken(host, ch, scope, creds, what);
    this.tokens.set(key, t);
    return `Bearer ${t.token}`;
  }

  /** The registry token flow: GET realm?service&scope (basic credentials when we have them), or a refresh-token POST for an identity token. */
  private async fetchToken(host: string, ch: Challenge, scope: string, creds: Credentials | undefined, what: string): Promise<Token> {
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError('PROTOCOL', `${what}: registry ${host} asked for a bearer token without naming a realm`, { host });
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('PROTOCOL', `${what}: registry ${host} named an invalid token realm ${JSON.stringify(realm)}`, { host });
    }
    if (url.protocol === 'http:' && !this.insecure.has(url.host)) {
      throw new RegistryError('INSECURE', `${what}: registry ${host}'s token service ${url.host} is plain HTTP and not listed as an insecure registry`, {
        host,
      });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new RegistryError('PROTOCOL', `${what}: token realm ${realm} is not an http(s) URL`, { host });
    const service = ch.params.service;
    let res: Response;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'stella', scope });
      if (service) form.set('service', service);
      res = await this.send(
        url,
        { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) },
        url.host,
        what,
      );
    } else {
      if (service) url.searchParams.set('service', service);
      url.searchParams.set('scope', scope);
      const headers: Record<string, string> = creds?.username !== undefined ? { Authorization: basicHeader(creds) } : {};
      res = await this.send(url, { method: 'GET', headers }, url.host, what);
    }
    if (res.status === 401 || res.status === 403) {
      await drain(res);
      throw new RegistryError(
        'UNAUTHORIZED',
        `${what}: the token service of registry ${host} (${url.host}) refused ${creds ? 'the configured credentials' : 'anonymous access'} (HTTP ${res.status}); ${creds ? 'check the credentials' : 'add credentials'} for ${host} in the docker config.json (STELLA_REGISTRY_AUTH_FILE)`,
        { host, status: res.status },
      );
    }
    if (!res.ok) throw await this.statusError(res, host, what);
    const bytes = await readBounded(res, 1 << 20, `${what}: token response`);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new RegistryError('PROTOCOL', `${what}: token service ${url.host} answered something that is not JSON`, { host });
    }
    const token = typeof json.token === 'string' ? json.token : typeof json.access_token === 'string' ? json.access_token : undefined;
    if (!token) throw new RegistryError('PROTOCOL', `${what}: token service ${url.host} answered without a token`, { host });
    const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
    return { token, expiresAt: Date.now() + expiresIn * 1000 };
  }

  /** A request against `ref`'s registry, authenticating on a 401 challenge and retrying once. */
  private async request(ref: ImageReference, what: string, pathOrUrl: string, init: RequestInit2 = {}): Promise<Response> {
    const host = ref.registry;
    const url = new URL(pathOrUrl, this.base(host));
    if (url.protocol === 'http:' && !this.insecure.has(url.host)) {
      throw new RegistryError('INSECURE', `${what}: registry ${host} sent us to plain HTTP (${url.host}), which is not listed as an insecure registry`, {
        host,
      });
    }
    const scope = `repository:${ref.repository}:${init.push ? 'pull,push' : 'pull'}`;
    const method = init.method ?? 'GET';
    const go = async (authz: string | undefined) =>
      this.send(
        url,
        // Credentials go to the registry's own origin only (an upload Location may point elsewhere).
        {
          method,
          headers: { ...(init.headers ?? {}), ...(authz && url.host === host ? { Authorization: authz } : {}) },
          ...(init.body ? { body: init.body } : {}),
        },
        host,
        what,
      );
    const first = await this.authorization(host, scope, false, what);
    let res = await go(first);
    if (res.status === 401) {
      const ch = parseChallenge(res.headers.get('www-authenticate'));
      if (ch && (ch.scheme === 'basic' || ch.scheme === 'bearer')) {
        const prev = this.challenges.get(host);
        this.challenges.set(host, ch);
        const next = await this.authorization(host, scope, true, what);
        const sameBasic = ch.scheme === 'basic' && prev?.scheme === 'basic' && next === first;
        if (next !== undefined && !sameBasic) {
          await drain(res);
          res = await go(next);
        }
      }
      if (res.status === 401) {
        await drain(res);
        const file = await this.auth();
        const creds = file.get(host);
        throw new RegistryError(
          'UNAUTHORIZED',
          creds
            ? `${what}: registry ${host} rejected the credentials for it in ${file.path} (HTTP 401): check user and password`
            : `${what}: registry ${host} requires authentication (HTTP 401) and no credentials for it are configured: add them to the docker config.json auths (STELLA_REGISTRY_AUTH_FILE)`,
          { host, status: 401 },
        );
      }
    }
    return res;
  }

  private async statusError(res: Response, host: string, what: string): Promise<RegistryError> {
    let text = '';
    try {
      text = (await readBounded(res, 16 << 10, what)).toString('utf8');
    } catch {
      // body too large or broken: the status says enough
    }
    const d = errorDetail(text);
    const detail = d.code || d.message ? ` (${[d.code, d.message].filter(Boolean).join(': ')})` : '';
    const details = { host, status: res.status, ...(d.code ? { registryCode: d.code } : {}) };
    if (res.status === 401)
      return new RegistryError('UNAUTHORIZED', `${what}: registry ${host} requires authentication${detail}: credentials are missing or wrong`, details);
    if (res.status === 403)
      return new RegistryError('DENIED', `${what}: registry ${host} denied access (HTTP 403${detail}): the credentials lack permission`, details);
    if (res.status === 404) return new RegistryError('NOT_FOUND', `${what}: not found on registry ${host}${detail}`, details);
    if (res.status === 429) return new RegistryError('UNAVAILABLE', `${what}: registry ${host} is rate limiting (HTTP 429${detail}); try again later`, details);
    if (res.status >= 500) return new RegistryError('UNAVAILABLE', `${what}: registry ${host} failed (HTTP ${res.status}${detail})`, details);
    return new RegistryError('PROTOCOL', `${what}: registry ${host} answered HTTP ${res.status}${detail}`, details);
  }

  async getManifest(refIn: string | ImageReference, opts: { accept?: string[] } = {}): Promise<FetchedManifest> {
    const ref = toReference(refIn);
    const what = `manifest ${ref}`;
    const res = await this.request(ref, what, `/v2/${ref.repository}/manifests/${manifestTarget(ref)}`, {
      headers: { Accept: (opts.accept ?? MANIFEST_ACCEPT).join(', ') },
    });
    if (!res.ok) throw await this.statusError(res, ref.registry, what);
    const bytes = await readBounded(res, this.maxManifestBytes, what);
    const digest = sha256Digest(bytes);
    if (ref.digest && digest !== ref.digest) {
      throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry sent a manifest with digest ${digest}, not the requested ${ref.digest}`, {
        expected: ref.digest,
        actual: digest,
      });
    }
    const announced = res.headers.get('docker-content-digest');
    if (announced?.startsWith('sha256:') && announced !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry announced digest ${announced} but the bytes hash to ${digest}`, {
        expected: announced,
        actual: digest,
      });
    }
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new RegistryError('PROTOCOL', `${what}: not valid JSON (${(e as Error).message})`, { digest });
    }
    if (!isObject(json)) throw new RegistryError('PROTOCOL', `${what}: not a JSON object`, { digest });
    const contentType = res.headers.get('content-type')?.split(';')[0]?.trim();
    const mediaType =
      (typeof json.mediaType === 'string' ? json.mediaType : undefined) ??
      (contentType && contentType !== 'application/json' && contentType !== 'application/octet-stream' ? contentType : undefined) ??
      (Array.isArray(json.manifests) ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
    return { ref, digest, mediaType, bytes, json };
  }

  /** HEAD a manifest: its digest, media type and size as the registry announces them, or undefined when it does not exist. */
  async headManifest(refIn: string | ImageReference): Promise<ManifestHead | undefined> {
    const ref = toReference(refIn);
    const what = `manifest ${ref}`;
    const res = await this.request(ref, what, `/v2/${ref.repository}/manifests/${manifestTarget(ref)}`, {
      method: 'HEAD',
      headers: { Accept: MANIFEST_ACCEPT.join(', ') },
    });
    await drain(res);
    if (res.status === 404) return undefined;
    if (!res.ok) throw await this.statusError(res, ref.registry, what);
    const digest = res.headers.get('docker-content-digest') ?? undefined;
    if (ref.digest && digest && digest !== ref.digest) {
      throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry announced digest ${digest}, not the requested ${ref.digest}`, {
        expected: ref.digest,
        actual: digest,
      });
    }
    const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim();
    const size = res.headers.get('content-length');
    return { ...(digest ? { digest } : {}), ...(mediaType ? { mediaType } : {}), ...(size !== null ? { size: Number(size) } : {}) };
  }

  /** resolve(), also handing back the platform manifest it fetched (openRegistryImage reads it without a second GET). */
  async resolveManifest(refIn: string | ImageReference, opts: { platform?: string } = {}): Promise<{ resolved: ResolvedReference; manifest: FetchedManifest }> {
    const ref = toReference(refIn);
    const platformText = opts.platform ?? defaultPlatform();
    const want = parsePlatform(platformText);
    const top = await this.getManifest(ref);
    if (!isIndex(top)) {
      return { resolved: { ref, digest: top.digest, mediaType: top.mediaType, pinned: pinnedReference(ref, top.digest) }, manifest: top };
    }
    const children = indexChildren(top, `index ${ref}`);
    const images = children.filter((c) => c.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' && c.platform?.os !== 'unknown');
    const matches = images.filter(
      (c) => c.platform?.os === want.os && c.platform?.architecture === want.architecture && (!want.variant || c.platform?.variant === want.variant),
    );
    const pick = matches[0];
    if (!pick) {
      const has = [...new Set(images.map((c) => formatPlatform(c.platform)))];
      throw new RegistryError(
        'PLATFORM_NOT_FOUND',
        `index ${ref} (${top.digest}) has no image for platform ${platformText}; it has: ${has.length ? has.join(', ') : 'no platform images'}`,
        { platform: platformText, available: has },
      );
    }
    const child = await this.getManifest(withTarget(ref, { digest: pick.digest }));
    if (child.bytes.length !== pick.size) {
      throw new RegistryError('DIGEST_MISMATCH', `manifest ${ref}@${pick.digest}: ${child.bytes.length} bytes, the index states ${pick.size}`, {
        expected: pick.size,
      });
    }
    if (isIndex(child))
      throw new RegistryError('PROTOCOL', `index ${ref}: the ${platformText} entry ${pick.digest} is itself an index (nested indexes are not supported)`);
    return {
      resolved: {
        ref,
        digest: child.digest,
        mediaType: child.mediaType,
        indexDigest: top.digest,
        ...(pick.platform ? { platform: pick.platform } : {}),
        pinned: pinnedReference(ref, child.digest),
      },
      manifest: child,
    };
  }

  async resolve(ref: string | ImageReference, opts: { platform?: string } = {}): Promise<ResolvedReference> {
    return (await this.resolveManifest(ref, opts)).resolved;
  }

  async putManifest(refIn: string | ImageReference, bytes: Buffer, mediaType: string): Promise<string> {
    const ref = toReference(refIn);
    const digest = sha256Digest(bytes);
    const what = `manifest push ${ref}`;
    if (bytes.length > this.maxManifestBytes)
      throw new RegistryError('TOO_LARGE', `${what}: ${bytes.length} bytes, more than the ${this.maxManifestBytes}-byte limit`);
    if (ref.digest && ref.digest !== digest)
      throw new RegistryError('DIGEST_MISMATCH', `${what}: the manifest's digest is ${digest}, not ${ref.digest}`, { expected: ref.digest, actual: digest });
    const target = ref.tag ?? digest;
    const res = await this.request(ref, what, `/v2/${ref.repository}/manifests/${target}`, {
      method: 'PUT',
      headers: { 'Content-Type': mediaType },
      body: bytes,
      push: true,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.statusError(res, ref.registry, what);
    await drain(res);
    const announced = res.headers.get('docker-content-digest');
    if (announced?.startsWith('sha256:') && announced !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry stored it as ${announced}, but its bytes hash to ${digest}`, {
        expected: digest,
        actual: announced,
      });
    }
    return digest;
  }

  private blobWhat(ref: ImageReference, digest: string): string {
    return `blob ${digest} of ${ref.registry}/${ref.repository}`;
  }

  private checkDigest(ref: ImageReference, digest: string): void {
    if (!isSha256Digest(digest))
      throw new RegistryError('BAD_REFERENCE', `${ref.registry}/${ref.repository}: malformed blob digest ${JSON.stringify(digest)} (expected sha256:<64 hex>)`);
  }

  private async blobResponse(ref: ImageReference, digest: string, what: string): Promise<Response> {
    this.checkDigest(ref, digest);
    const res = await this.request(ref, what, `/v2/${ref.repository}/blobs/${digest}`);
    if (!res.ok) throw await this.statusError(res, ref.registry, what);
    return res;
  }

  async openBlob(repo: string | ImageReference, digest: string, size?: number): Promise<Readable> {
    const ref = toReference(repo);
    const what = this.blobWhat(ref, digest);
    const res = await this.blobResponse(ref, digest, what);
    const cl = res.headers.get('content-length');
    if (size !== undefined && cl !== null && Number(cl) !== size) {
      await drain(res);
      throw new RegistryError('DIGEST_MISMATCH', `${what}: the registry announces ${cl} bytes, its descriptor states ${size}`, {
        expected: size,
        actual: Number(cl),
      });
    }
    const verifier = new DigestVerifier(digest, size, what);
    const source = res.body ? Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>) : Readable.from([]);
    source.on('error', (e) => verifier.destroy(networkError(e, ref.registry, `${what} (while streaming)`)));
    // A registry that stops sending mid-blob fails the stream (retryable) rather than hanging the
    // reader; time spent waiting on a slow reader (backpressure) does not count.
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        if (source.readableEnded || verifier.destroyed) return;
        if (verifier.writableNeedDrain || source.isPaused()) return arm();
        verifier.destroy(networkError(Object.assign(new Error('timeout'), { code: 'TIMEOUT' }), ref.registry, `${what} (while streaming)`));
      }, this.timeoutMs);
    };
    source.on('data', arm);
    source.on('end', () => clearTimeout(idle));
    verifier.on('close', () => {
      clearTimeout(idle);
      if (!source.destroyed) source.destroy();
    });
    arm();
    source.pipe(verifier);
    return verifier;
  }

  /**
   * The first `n` bytes of a blob, unverified (for sniffing compression before the verified
   * stream): a Range request, or the start of the whole blob when the registry ignores Range.
   */
  async peekBlob(repo: string | ImageReference, digest: string, n: number): Promise<Buffer> {
    const ref = toReference(repo);
    this.checkDigest(ref, digest);
    const what = this.blobWhat(ref, digest);
    const res = await this.request(ref, what, `/v2/${ref.repository}/blobs/${digest}`, { headers: { Range: `bytes=0-${Math.max(0, n - 1)}` } });
    if (res.status === 416) {
      await drain(res);
      return Buffer.alloc(0);
    }
    if (!res.ok) throw await this.statusError(res, ref.registry, what);
    const chunks: Buffer[] = [];
    let total = 0;
    if (res.body) {
      const reader = res.body.getReader();
      try {
        while (total < n) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
          total += value.byteLength;
        }
      } catch (e) {
        throw networkError(e, ref.registry, `${what} (while reading)`);
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    }
    return Buffer.concat(chunks).subarray(0, n);
  }

  async getBlob(repo: string | ImageReference, digest: string, maxBytes = DEFAULT_MAX_BLOB_BYTES): Promise<Buffer> {
    const ref = toReference(repo);
    const what = this.blobWhat(ref, digest);
    const res = await this.blobResponse(ref, digest, what);
    const bytes = await readBounded(res, maxBytes, what);
    const got = sha256Digest(bytes);
    if (got !== digest)
      throw new RegistryError('DIGEST_MISMATCH', `${what}: digest mismatch (expected ${digest}, got ${got})`, { expected: digest, actual: got });
    return bytes;
  }

  /** Whether the registry already has the blob (HEAD). */
  async hasBlob(repo: string | ImageReference, digest: string, push = false): Promise<boolean> {
    const ref = toReference(repo);
    this.checkDigest(ref, digest);
    const what = this.blobWhat(ref, digest);
    const res = await this.request(ref, what, `/v2/${ref.repository}/blobs/${digest}`, { method: 'HEAD', push });
    await drain(res);
    if (res.status === 404) return false;
    if (!res.ok) throw await this.statusError(res, ref.registry, what);
    return true;
  }

  async pushBlob(repo: string | ImageReference, bytes: Buffer): Promise<{ digest: string; size: number }> {
    const ref = toReference(repo);
    const digest = sha256Digest(bytes);
    const size = bytes.length;
    if (await this.hasBlob(ref, digest, true)) return { digest, size };
    const what = `blob push ${digest} to ${ref.registry}/${ref.repository}`;
    const start = await this.request(ref, what, `/v2/${ref.repository}/blobs/uploads/`, { method: 'POST', push: true, headers: { 'Content-Length': '0' } });
    if (start.status !== 202) throw await this.statusError(start, ref.registry, what);
    await drain(start);
    const loc = start.headers.get('location');
    if (!loc) throw new RegistryError('PROTOCOL', `${what}: registry ${ref.registry} started an upload without a Location`);
    const url = new URL(loc, this.base(ref.registry));
    url.searchParams.set('digest', digest);
    const put = await this.request(ref, what, url.toString(), {
      method: 'PUT',
      push: true,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    });
    if (put.status !== 201 && put.status !== 204 && put.status !== 200) throw await this.statusError(put, ref.registry, what);
    await drain(put);
    return { digest, size };
  }

  async referrers(repo: string | ImageReference, digest: string, opts: { artifactType?: string } = {}): Promise<OciDescriptor[]> {
    const ref = toReference(repo);
    this.checkDigest(ref, digest);
    const what = `referrers of ${ref.registry}/${ref.repository}@${digest}`;
    const filter = (ds: OciDescriptor[]) => (opts.artifactType ? ds.filter((d) => d.artifactType === opts.artifactType) : ds);
    if (this.referrersSupport.get(ref.registry) !== false) {
      const q = opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : '';
      const res = await this.request(ref, what, `/v2/${ref.repository}/referrers/${digest}${q}`, { headers: { Accept: MEDIA_TYPES.ociIndex } });
      if (res.ok) {
        this.referrersSupport.set(ref.registry, true);
        const all: OciDescriptor[] = [];
        // The answer may be paged with `Link: <…>; rel="next"`.
        for (let page: Response | undefined = res, n = 0; page; n++) {
          const bytes = await readBounded(page, this.maxManifestBytes, what);
          let json: unknown;
          try {
            json = JSON.parse(bytes.toString('utf8'));
          } catch {
            throw new RegistryError('PROTOCOL', `${what}: the referrers answer is not JSON`);
          }
          if (!isObject(json)) throw new RegistryError('PROTOCOL', `${what}: the referrers answer is not an image index`);
          all.push(...indexChildren({ json } as FetchedManifest, what));
          const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(page.headers.get('link') ?? '')?.[1];
          if (!next) break;
          if (n >= 50) throw new RegistryError('PROTOCOL', `${what}: more than 50 pages of referrers`);
          page = await this.request(ref, what, new URL(next, page.url || this.base(ref.registry)).toString(), { headers: { Accept: MEDIA_TYPES.ociIndex } });
          if (!page.ok) throw await this.statusError(page, ref.registry, what);
        }
        return filter(all);
      }
      if (res.status !== 404) throw await this.statusError(res, ref.registry, what);
      const text = (await readBounded(res, 16 << 10, what).catch(() => Buffer.alloc(0))).toString('utf8');
      // A registry with the API answers 200 for any digest; 404 means it lacks the API — unless the repository itself is unknown.
      if (errorDetail(text).code !== 'NAME_UNKNOWN') this.referrersSupport.set(ref.registry, false);
    }
    const tagRef = withTarget(ref, { tag: digest.replace(':', '-') });
    let index: FetchedManifest;
    try {
      index = await this.getManifest(tagRef, { accept: [MEDIA_TYPES.ociIndex] });
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'NOT_FOUND') return [];
      throw e;
    }
    return filter(indexChildren(index, `referrers index ${tagRef}`));
  }

  async supportsReferrers(repo: string | ImageReference): Promise<boolean> {
    const ref = toReference(repo);
    const known = this.referrersSupport.get(ref.registry);
    if (known !== undefined) return known;
    const what = `referrers probe of ${ref.registry}/${ref.repository}`;
    const res = await this.request(ref, what, `/v2/${ref.repository}/referrers/${EMPTY_DIGEST}`, { headers: { Accept: MEDIA_TYPES.ociIndex } });
    if (res.ok) {
      await drain(res);
      this.referrersSupport.set(ref.registry, true);
      return true;
    }
    if (res.status !== 404) throw await this.statusError(res, ref.registry, what);
    const text = (await readBounded(res, 16 << 10, what).catch(() => Buffer.alloc(0))).toString('utf8');
    if (errorDetail(text).code === 'NAME_UNKNOWN') return false;
    this.referrersSupport.set(ref.registry, false);
    return false;
  }
}

export function isIndex(m: FetchedManifest): boolean {
  return INDEX_TYPES.has(m.mediaType) || (Array.isArray(m.json.manifests) && !Array.isArray(m.json.layers));
}

/** An index's `manifests`, each checked to be a well-formed descriptor. */
export function indexChildren(m: Pick<FetchedManifest, 'json'>, what: string): OciDescriptor[] {
  const list = m.json.manifests;
  if (!Array.isArray(list)) throw new RegistryError('PROTOCOL', `${what}: not an image index (no manifests array)`);
  return list.map((d, i) => asDescriptor(d, `${what} manifests[${i}]`));
}

export function asDescriptor(v: unknown, what: string): OciDescriptor {
  if (!isObject(v) || typeof v.digest !== 'string' || !isSha256Digest(v.digest))
    throw new RegistryError('PROTOCOL', `${what}: malformed descriptor (digest must be sha256:<64 hex>)`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw new RegistryError('PROTOCOL', `${what}: malformed descriptor size`);
  if (typeof v.mediaType !== 'string') throw new RegistryError('PROTOCOL', `${what}: descriptor without a mediaType`);
  return v as unknown as OciDescriptor;
}

export function createRegistryClient(opts: RegistryClientOptions = {}): OciRegistryClient {
  return new OciRegistryClient(opts);
}

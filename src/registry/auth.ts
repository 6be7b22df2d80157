/**
 * Registry authentication: credentials from a docker `config.json` (`auths`: `auth` base64
 * "user:password", or `username`/`password`; `identitytoken` used as an OAuth2 refresh token
 * in the token flow), `WWW-Authenticate` challenge parsing, and the registry token flow
 * (challenge → realm?service&scope → bearer token, cached per scope until it expires).
 * credsStore/credHelpers are not run (no external programs).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from './errors';
import { DOCKER_HUB } from './reference';

export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (docker's `identitytoken`). */
  identityToken?: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (one challenge; the first one when several). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

function normaliseKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  k = k.split('/')[0]!;
  return k.toLowerCase() === 'index.docker.io' || k.toLowerCase() === 'docker.io' || k.toLowerCase() === 'registry.hub.docker.com'
    ? DOCKER_HUB
    : k.toLowerCase();
}

/** Credentials per registry host, read from a docker config.json. */
export class AuthFile {
  private constructor(
    readonly path: string | undefined,
    private readonly byHost: Map<string, Credentials>,
  ) {}

  static empty(): AuthFile {
    return new AuthFile(undefined, new Map());
  }

  /**
   * `explicit`: a file the operator named (opts.authFile / STELLA_REGISTRY_AUTH_FILE) must exist;
   * the default ~/.docker/config.json may be missing (anonymous access).
   */
  static async load(path: string | undefined): Promise<AuthFile> {
    const explicit = path !== undefined && path !== '';
    const file = explicit ? path : join(homedir(), '.docker', 'config.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (!explicit && (e as NodeJS.ErrnoException).code === 'ENOENT') return AuthFile.empty();
      throw new RegistryError('AUTH_FILE', `registry credentials file ${file} cannot be read: ${(e as Error).message}`, { file }, { cause: e });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new RegistryError('AUTH_FILE', `registry credentials file ${file} is not valid JSON: ${(e as Error).message}`, { file }, { cause: e });
    }
    const auths = (json as { auths?: unknown })?.auths;
    const map = new Map<string, Credentials>();
    if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
      throw new RegistryError('AUTH_FILE', `registry credentials file ${file}: "auths" must be an object of host → credentials`, { file });
    }
    for (const [key, v] of Object.entries((auths ?? {}) as Record<string, unknown>)) {
      if (typeof v !== 'object' || v === null) continue;
      const e = v as Record<string, unknown>;
      const c: Credentials = {};
      if (typeof e.auth === 'string' && e.auth !== '') {
        const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i <= 0) throw new RegistryError('AUTH_FILE', `registry credentials file ${file}: auths["${key}"].auth is not base64 of "user:password"`, { file });
        c.username = decoded.slice(0, i);
        c.password = decoded.slice(i + 1);
      } else if (typeof e.username === 'string') {
        c.username = e.username;
        if (typeof e.password === 'string') c.password = e.password;
      }
      if (typeof e.identitytoken === 'string' && e.identitytoken !== '') c.identityToken = e.identitytoken;
      if (c.username !== undefined || c.identityToken !== undefined) map.set(normaliseKey(key), c);
    }
    return new AuthFile(file, map);
  }

  get(host: string): Credentials | undefined {
    return this.byHost.get(normaliseKey(host));
  }
}

export interface Token {
  token: string;
  expiresAt: number;
}

/** Bearer tokens per realm/service/scope, reused until 10 s before they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, Token>();

  key(ch: Challenge, scope: string): string {
    return `${ch.params.realm}|${ch.params.service ?? ''}|${scope}`;
  }

  get(key: string, now = Date.now()): string | undefined {
    const t = this.tokens.get(key);
    if (!t) return undefined;
    if (t.expiresAt - 10_000 <= now) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  set(key: string, t: Token): void {
    this.tokens.set(key, t);
  }
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
}

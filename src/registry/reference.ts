/**
 * Image references, docker-style: `[host[:port]/]repo/path[:tag][@sha256:<hex>]`. A first
 * component counts as a host when it has a '.' or a ':' or is `localhost`; otherwise the
 * image is on Docker Hub (`docker.io`, spoken to as `registry-1.docker.io`), where one-part
 * names get `library/`. Only sha256 digests are accepted.
 */
import { RegistryError } from './errors';
import type { ImageReference } from './types';

export const DOCKER_HUB = 'registry-1.docker.io';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

class Ref implements ImageReference {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: string,
  ) {}
  toString(): string {
    return `${this.registry}/${this.repository}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}

function bad(input: string, why: string): RegistryError {
  return new RegistryError('BAD_REFERENCE', `invalid image reference ${JSON.stringify(input)}: ${why}`, { reference: input });
}

/** Parse and normalise; throws RegistryError BAD_REFERENCE naming what is wrong. */
export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string' || input.trim() === '') throw bad(String(input), 'empty');
  if (input !== input.trim() || /\s/.test(input)) throw bad(input, 'contains whitespace');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) throw bad(input, 'a reference has no scheme (write host/repo:tag, not https://…)');
  // `sha256:…` alone would parse as docker.io/library/sha256 with a tag: almost surely a digest given where an image was meant.
  if (/^sha256:/i.test(input)) throw bad(input, 'a digest alone names no repository (write host/repo@sha256:…)');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digest.startsWith('sha256:')) throw bad(input, `unsupported digest ${JSON.stringify(digest)} (only sha256:<64 hex> is supported)`);
    if (!DIGEST_RE.test(digest)) throw bad(input, `malformed digest ${JSON.stringify(digest)} (expected sha256:<64 lowercase hex>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(input, `malformed tag ${JSON.stringify(tag)} (letters, digits, '_', '.', '-'; at most 128)`);
  }
  const parts = rest.split('/');
  let registry: string;
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost' || parts[0]!.startsWith('['))) {
    registry = parts.shift()!;
    if (!HOST_RE.test(registry)) throw bad(input, `malformed registry host ${JSON.stringify(registry)}`);
    const port = /:(\d+)$/.exec(registry)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw bad(input, `port ${port} out of range`);
    if (HUB_ALIASES.has(registry.toLowerCase())) registry = DOCKER_HUB;
  } else {
    registry = DOCKER_HUB;
  }
  if (parts.length === 0 || parts.some((p) => p === '')) throw bad(input, 'empty repository path component');
  for (const p of parts) {
    if (!COMPONENT_RE.test(p))
      throw bad(input, `repository component ${JSON.stringify(p)} must be lowercase letters and digits, separated by '.', '_', '__' or '-'`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255) throw bad(input, 'repository name longer than 255 characters');
  return new Ref(registry, repository, tag, digest);
}

/** Accept a string or an already parsed reference. */
export function toReference(ref: string | ImageReference): ImageReference {
  return typeof ref === 'string' ? parseReference(ref) : ref;
}

/** The manifest path element: the digest when there is one (digest-first), else the tag, else `latest`. */
export function manifestTarget(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** `registry/repository@digest`. */
export function pinnedReference(ref: ImageReference, digest: string): string {
  return `${ref.registry}/${ref.repository}@${digest}`;
}

/** The same repository, other tag/digest. */
export function withTarget(ref: ImageReference, target: { tag?: string; digest?: string }): ImageReference {
  return new Ref(ref.registry, ref.repository, target.tag, target.digest);
}

export function isSha256Digest(s: string): boolean {
  return DIGEST_RE.test(s);
}

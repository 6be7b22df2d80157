/** The registry client the publish/discover paths use: one per request, plain HTTP only for a host the caller names. */
import { createRegistryClient, parseReference } from '../../registry/index';
import type { ImageReference, RegistryClient } from '../../registry/types';
import { badInput } from '../../lib/errors';

export interface RegistryTarget {
  ref: ImageReference;
  /** `registry/repository`, the name publications are recorded under. */
  repository: string;
  client: RegistryClient;
}

/** Parses `image` and makes a client for its registry; `insecure` allows plain HTTP to that host only. */
export function registryTarget(image: string, opts: { insecure?: boolean } = {}): RegistryTarget {
  let ref: ImageReference;
  try {
    ref = parseReference(image);
  } catch (e) {
    throw badInput(`malformed image reference ${JSON.stringify(image)}: ${(e as Error).message}`, undefined, { cause: e });
  }
  const client = createRegistryClient({ ...(opts.insecure ? { insecureRegistries: [ref.registry] } : {}) });
  return { ref, repository: `${ref.registry}/${ref.repository}`, client };
}

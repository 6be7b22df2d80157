/** The registry an image reference names, with the process's client (registry settings; plain HTTP to that host only when asked). */
import type { AppContext } from '../context';
import { registryClient } from '../scan/registry';
import { parseReference } from '../../registry/index';
import type { ImageReference, RegistryClient } from '../../registry/types';
import { badInput } from '../../lib/errors';

export interface RegistryTarget {
  ref: ImageReference;
  /** `registry/repository`, the name publications are recorded under. */
  repository: string;
  client: RegistryClient;
}

/** Parses `image` and picks the client for its registry (the scan feature's, so auth and settings are one). */
export function registryTarget(ctx: AppContext, image: string, opts: { insecure?: boolean } = {}): RegistryTarget {
  let ref: ImageReference;
  try {
    ref = parseReference(image);
  } catch (e) {
    throw badInput(`malformed image reference ${JSON.stringify(image)}: ${(e as Error).message}`, undefined, { cause: e });
  }
  return { ref, repository: `${ref.registry}/${ref.repository}`, client: registryClient(ctx, opts.insecure ? ref.registry : undefined) };
}

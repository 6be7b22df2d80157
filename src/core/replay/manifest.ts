import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { canonicalJson } from '../../lib/canonical';
import { badInput } from '../../lib/errors';
import { signEnvelope, type Envelope, type Signer } from '../../crypto/dsse';

export const MANIFEST_SCHEMA_ID = 'stella.replay-manifest/v1';
export const MANIFEST_PAYLOAD_TYPE = 'application/vnd.stella.replay-manifest.v1+json';
export const SCHEMA_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'schemas', 'replay-manifest.schema.json');

export interface ReplayManifest {
  schema: typeof MANIFEST_SCHEMA_ID;
  scanId: string;
  tenant: string;
  artifactDigest: string;
  imageRef?: string | null;
  inputBundle: { path: 'inputbundle.tar.zst'; digest: string; size: number };
  outputBundle: { path: 'outputbundle.tar.zst'; digest: string; size: number };
  scanner: { name: string; version: string; toolHashes: Record<string, string> };
  feedDigest: string | null;
  policyId?: string;
  verdict: 'pass' | 'fail';
  counts?: Record<string, number>;
  createdAt: string;
}

let validator: (((v: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null }) | undefined;

export function validateManifest(value: unknown): ReplayManifest {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: false, strict: false, validateFormats: false });
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')));
  }
  if (!validator(value)) {
    const e = validator.errors?.[0];
    throw badInput(`replay manifest does not match its schema: ${e?.instancePath || '/'} ${e?.message ?? ''}`.trim());
  }
  const m = value as ReplayManifest;
  if (Number.isNaN(Date.parse(m.createdAt))) throw badInput('replay manifest does not match its schema: /createdAt is not a date-time');
  return m;
}

export function manifestBytes(m: ReplayManifest): Buffer {
  return Buffer.from(canonicalJson(m), 'utf8');
}

export async function signManifest(m: ReplayManifest, signer: Signer): Promise<Envelope> {
  return signEnvelope(MANIFEST_PAYLOAD_TYPE, manifestBytes(validateManifest(m)), [signer]);
}

/**
 * HTTP contract of attestations: create (sign a statement about an artifact), list and verify
 * against the trusted RootPack, import an external envelope, signer health.
 */
import { z } from 'zod';
import { Digest } from './common';

export const ATTEST_TYPE_NAMES = ['slsa-provenance', 'sbom', 'vuln'] as const;

/** `type` is checked by the server against the known types (its message lists them). */
export const CreateAttestationBody = z.object({ subject: Digest, type: z.string().min(1) });
export const CreatedAttestation = z.looseObject({
  id: z.string(),
  predicateType: z.string(),
  kid: z.string(),
  created: z.boolean(),
  reused: z.boolean(),
  type: z.string(),
  subject: z.string(),
  attests: z.array(z.string()),
  scanId: z.string().nullable(),
});

export const SignatureView = z.looseObject({
  keyid: z.string(),
  alg: z.string().nullable(),
  valid: z.boolean(),
  trustedAtSigning: z.boolean(),
  trustedNow: z.boolean(),
  reason: z.string(),
  reasonNow: z.string(),
});

export const AttestationView = z.looseObject({
  id: z.string(),
  predicateType: z.string().nullable(),
  type: z.string(),
  subjects: z.array(z.string()),
  attests: z.array(z.looseObject({ id: z.string(), relation: z.string() })),
  createdAt: z.string(),
  state: z.string(),
  signer: z.string().nullable(),
  valid: z.boolean(),
  trustedNow: z.boolean(),
  signatures: z.array(SignatureView),
  error: z.string().optional(),
});
export type AttestationView = z.infer<typeof AttestationView>;

export const AttestationsQuery = z.looseObject({ subject: Digest });
export const AttestationList = z.looseObject({ items: z.array(AttestationView) });

export const AttestationIdParams = z.object({ id: Digest });
/** The verified view plus the in-toto statement (null when the payload did not parse). */
export const VerifiedAttestation = AttestationView.extend({ statement: z.unknown() });

/** `?attests=<id>` (repeatable): evidence items the imported attestation is about. */
export const ImportAttestationQuery = z.looseObject({
  attests: z
    .union([Digest, z.array(Digest)])
    .optional()
    .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])),
});
export const ImportedAttestation = z.looseObject({
  id: z.string(),
  created: z.boolean(),
  predicateType: z.string(),
  subject: z.string(),
  signer: z.string(),
  /** What was uploaded: a DSSE envelope, or a Sigstore bundle v0.3 (its envelope is what is stored). */
  format: z.enum(['dsse', 'sigstore-bundle']).optional(),
});

export const ATTESTATION_FORMATS = ['sigstore-bundle', 'dsse'] as const;
/** `?format=`: a Sigstore bundle v0.3 (default; keyed, no Rekor entry) or the bare DSSE envelope. */
export const ExportAttestationQuery = z.looseObject({ format: z.enum(ATTESTATION_FORMATS).default('sigstore-bundle') });
export const DsseEnvelopeJson = z.looseObject({
  payloadType: z.string(),
  payload: z.string(),
  signatures: z.array(z.looseObject({ keyid: z.string().optional(), sig: z.string() })),
});
export const SigstoreBundleJson = z.looseObject({
  mediaType: z.string(),
  verificationMaterial: z.looseObject({ publicKey: z.looseObject({ hint: z.string() }).optional() }),
  dsseEnvelope: DsseEnvelopeJson,
});
export const ExportedAttestation = z.union([SigstoreBundleJson, DsseEnvelopeJson]);

export const SignerStatus = z.looseObject({
  healthy: z.boolean(),
  activeKey: z.looseObject({ kid: z.string(), alg: z.string(), notBefore: z.string(), createdAt: z.string() }).nullable(),
  canSign: z.boolean(),
  canSignError: z.string().nullable(),
  inRootPack: z.boolean(),
  keys: z.looseObject({ total: z.number(), active: z.number(), retired: z.number() }),
  recentFailures: z.array(
    z.looseObject({
      at: z.string(),
      kid: z.string().nullable(),
      predicateType: z.string().nullable(),
      subject: z.string().nullable(),
      scanId: z.string().nullable(),
      error: z.string(),
    }),
  ),
  failuresLast24h: z.number(),
});

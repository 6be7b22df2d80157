import { z } from 'zod';
import { canonicalJson } from '../lib/canonical';
import { CryptoError } from './errors';
import { signEnvelope, verifyEnvelope, parseEnvelope, envelopePayload, type Envelope, type Signer, type TrustResolver, type VerifyResult } from './dsse';

/**
 * in-toto Statement v1 (https://github.com/in-toto/attestation/tree/main/spec/v1) and the
 * predicates stella produces. Statements are serialised as canonical JSON so the same
 * statement always yields the same signed bytes.
 */

export const STATEMENT_TYPE_V1 = 'https://in-toto.io/Statement/v1';
/** What cosign (v2.x `attest`, `attest-blob`) still writes: the same fields as v1, read as such; stella writes v1. */
export const STATEMENT_TYPE_V01 = 'https://in-toto.io/Statement/v0.1';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const CYCLONEDX_BOM = 'https://cyclonedx.org/bom';
export const VULNS_V02 = 'https://in-toto.io/attestation/vulns/v0.2';

export interface Subject {
  name: string;
  digest: { sha256?: string } & Record<string, string>;
}

export interface Statement<P = unknown> {
  _type: typeof STATEMENT_TYPE_V1 | typeof STATEMENT_TYPE_V01;
  subject: Subject[];
  predicateType: string;
  predicate: P;
}

export interface ResourceDescriptor {
  uri?: string;
  digest?: Record<string, string>;
  name?: string;
  downloadLocation?: string;
  mediaType?: string;
  content?: string;
  annotations?: Record<string, unknown>;
}

export interface SlsaProvenanceV1 {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters?: Record<string, unknown>;
    resolvedDependencies?: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string>; builderDependencies?: ResourceDescriptor[] };
    metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string };
    byproducts?: ResourceDescriptor[];
  };
}

/** A CycloneDX BOM is the predicate itself; only the identifying fields are checked. */
export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: string;
  [k: string]: unknown;
}

export interface VulnResult {
  id: string;
  severity: { method: string; score: string }[];
  annotations?: Record<string, unknown>[];
}

export interface VulnsPredicateV02 {
  scanner: {
    uri: string;
    version?: string;
    db: { uri?: string; version?: string; lastUpdate: string };
    result: VulnResult[];
  };
  metadata: { scanStartedOn: string; scanFinishedOn: string };
}

// ---------------------------------------------------------------------------------------
// Schemas. Parsing is strict about what stella relies on and tolerant of extra fields,
// since statements from other producers legitimately carry more.

const HEX_RE = /^[0-9a-f]+$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const timestamp = z.string().refine((s) => RFC3339_RE.test(s) && !Number.isNaN(Date.parse(s)), 'must be an RFC 3339 timestamp');

const DigestSetSchema = z
  .record(z.string().min(1), z.string().regex(HEX_RE, 'digest values must be lowercase hex'))
  .refine((d) => Object.keys(d).length > 0, 'digest must not be empty')
  .refine((d) => d.sha256 === undefined || d.sha256.length === 64, 'sha256 digest must be 64 hex characters');

const SubjectSchema = z.looseObject({ name: z.string(), digest: DigestSetSchema });

const ResourceDescriptorSchema = z
  .looseObject({
    uri: z.string().optional(),
    digest: DigestSetSchema.optional(),
    name: z.string().optional(),
    downloadLocation: z.string().optional(),
    mediaType: z.string().optional(),
    content: z.string().optional(),
    annotations: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((r) => r.uri !== undefined || r.digest !== undefined || r.content !== undefined, 'resource descriptor needs uri, digest or content');

const jsonObject = z.record(z.string(), z.unknown());

const SlsaProvenanceSchema = z.looseObject({
  buildDefinition: z.looseObject({
    buildType: z.string().min(1),
    externalParameters: jsonObject,
    internalParameters: jsonObject.optional(),
    resolvedDependencies: z.array(ResourceDescriptorSchema).optional(),
  }),
  runDetails: z.looseObject({
    builder: z.looseObject({
      id: z.string().min(1),
      version: z.record(z.string(), z.string()).optional(),
      builderDependencies: z.array(ResourceDescriptorSchema).optional(),
    }),
    metadata: z.looseObject({ invocationId: z.string().optional(), startedOn: timestamp.optional(), finishedOn: timestamp.optional() }).optional(),
    byproducts: z.array(ResourceDescriptorSchema).optional(),
  }),
});

const CycloneDxSchema = z.looseObject({ bomFormat: z.literal('CycloneDX'), specVersion: z.string().min(1) });

const VulnsSchema = z.looseObject({
  scanner: z.looseObject({
    uri: z.string().min(1),
    version: z.string().optional(),
    db: z.looseObject({ uri: z.string().optional(), version: z.string().optional(), lastUpdate: timestamp }),
    result: z.array(
      z.looseObject({
        id: z.string().min(1),
        severity: z.array(z.looseObject({ method: z.string().min(1), score: z.string() })),
        annotations: z.array(z.record(z.string(), z.unknown())).optional(),
      }),
    ),
  }),
  metadata: z.looseObject({ scanStartedOn: timestamp, scanFinishedOn: timestamp }),
});

const StatementSchema = z.looseObject({
  _type: z.union([z.literal(STATEMENT_TYPE_V1), z.literal(STATEMENT_TYPE_V01)]),
  subject: z.array(SubjectSchema).min(1),
  predicateType: z.string().min(1),
  predicate: jsonObject,
});

/** Predicate schema for a predicateType stella understands, or undefined for foreign types. */
function predicateSchema(predicateType: string): z.ZodType | undefined {
  if (predicateType === SLSA_PROVENANCE_V1) return SlsaProvenanceSchema;
  if (predicateType === VULNS_V02) return VulnsSchema;
  // Producers also use versioned forms such as https://cyclonedx.org/bom/v1.5.
  if (predicateType === CYCLONEDX_BOM || predicateType.startsWith(`${CYCLONEDX_BOM}/v`)) return CycloneDxSchema;
  return undefined;
}

function check<T>(schema: z.ZodType, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success)
    throw new CryptoError('MALFORMED_STATEMENT', `invalid ${what}`, { issues: r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`) });
  return r.data as T;
}

function ts(v: Date | string, field: string): string {
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new CryptoError('MALFORMED_STATEMENT', `${field} is an invalid date`);
    return v.toISOString();
  }
  return check<string>(timestamp, v, field);
}

// ---------------------------------------------------------------------------------------
// Builders

/** Subject from a `sha256:<hex>` digest (the locker's id form) or a bare 64-char hex. */
export function subject(name: string, digest: string): Subject {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new CryptoError('MALFORMED_DIGEST', 'subject digest must be sha256:<64 lowercase hex>', { digest });
  return { name, digest: { sha256: hex } };
}

export function makeStatement<P>(subjects: Subject[], predicateType: string, predicate: P): Statement<P> {
  const st: Statement<P> = { _type: STATEMENT_TYPE_V1, subject: subjects, predicateType, predicate };
  validateStatement(st);
  return st;
}

export interface SlsaProvenanceInput {
  buildType: string;
  externalParameters: Record<string, unknown>;
  internalParameters?: Record<string, unknown>;
  resolvedDependencies?: ResourceDescriptor[];
  builderId: string;
  builderVersion?: Record<string, string>;
  invocationId?: string;
  startedOn?: Date | string;
  finishedOn?: Date | string;
  byproducts?: ResourceDescriptor[];
}

export function slsaProvenance(input: SlsaProvenanceInput): SlsaProvenanceV1 {
  const metadata: NonNullable<SlsaProvenanceV1['runDetails']['metadata']> = {};
  if (input.invocationId !== undefined) metadata.invocationId = input.invocationId;
  if (input.startedOn !== undefined) metadata.startedOn = ts(input.startedOn, 'startedOn');
  if (input.finishedOn !== undefined) metadata.finishedOn = ts(input.finishedOn, 'finishedOn');
  const p: SlsaProvenanceV1 = {
    buildDefinition: {
      buildType: input.buildType,
      externalParameters: input.externalParameters,
      internalParameters: input.internalParameters ?? {},
      resolvedDependencies: input.resolvedDependencies ?? [],
    },
    runDetails: {
      builder: { id: input.builderId, ...(input.builderVersion ? { version: input.builderVersion } : {}) },
      metadata,
      ...(input.byproducts ? { byproducts: input.byproducts } : {}),
    },
  };
  check(SlsaProvenanceSchema, p, 'SLSA provenance predicate');
  return p;
}

/** The BOM is the predicate verbatim (CycloneDX in-toto convention). */
export function cyclonedxPredicate<B extends CycloneDxBom>(bom: B): B {
  check(CycloneDxSchema, bom, 'CycloneDX BOM');
  return bom;
}

export interface VulnsInput {
  scanner: { uri: string; version?: string };
  db: { uri?: string; version?: string; lastUpdate: Date | string };
  result: VulnResult[];
  scanStartedOn: Date | string;
  scanFinishedOn: Date | string;
}

export function vulnsPredicate(input: VulnsInput): VulnsPredicateV02 {
  const db: VulnsPredicateV02['scanner']['db'] = { lastUpdate: ts(input.db.lastUpdate, 'db.lastUpdate') };
  if (input.db.uri !== undefined) db.uri = input.db.uri;
  if (input.db.version !== undefined) db.version = input.db.version;
  const p: VulnsPredicateV02 = {
    scanner: {
      uri: input.scanner.uri,
      ...(input.scanner.version !== undefined ? { version: input.scanner.version } : {}),
      db,
      result: input.result,
    },
    metadata: { scanStartedOn: ts(input.scanStartedOn, 'scanStartedOn'), scanFinishedOn: ts(input.scanFinishedOn, 'scanFinishedOn') },
  };
  check(VulnsSchema, p, 'vulnerability scan predicate');
  return p;
}

// ---------------------------------------------------------------------------------------
// Serialisation, signing, parsing

/** Canonical JSON bytes of a statement: the exact DSSE payload. */
export function serializeStatement(st: Statement): Uint8Array {
  return new TextEncoder().encode(canonicalJson(st));
}

export async function signStatement(st: Statement, signers: Signer[]): Promise<Envelope> {
  validateStatement(st);
  return signEnvelope(INTOTO_PAYLOAD_TYPE, serializeStatement(st), signers);
}

/** Validate statement structure and, for predicate types stella knows, the predicate shape. Throws BAD_INPUT. */
export function validateStatement(value: unknown): Statement {
  const st = check<Statement>(StatementSchema, value, 'in-toto statement');
  const schema = predicateSchema(st.predicateType);
  if (schema) check(schema, st.predicate, `predicate for ${st.predicateType}`);
  return st;
}

/** Parse statement JSON (bytes, text or value) and validate it. */
export function parseStatement(payload: Uint8Array | string | unknown): Statement {
  let value: unknown = payload;
  if (payload instanceof Uint8Array || typeof payload === 'string') {
    let text: string;
    try {
      text = typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload);
      value = JSON.parse(text);
    } catch {
      throw new CryptoError('MALFORMED_STATEMENT', 'in-toto statement is not valid UTF-8 JSON');
    }
  }
  return validateStatement(value);
}

/**
 * Extract and validate the statement inside an envelope WITHOUT checking signatures —
 * for display/triage only. Use verifyStatement for anything that is relied upon.
 */
export function statementFromEnvelope(env: Envelope | unknown): Statement {
  const e = parseEnvelope(env);
  if (e.payloadType !== INTOTO_PAYLOAD_TYPE) throw new CryptoError('WRONG_PAYLOAD_TYPE', `payloadType is ${e.payloadType}, expected ${INTOTO_PAYLOAD_TYPE}`);
  return parseStatement(envelopePayload(e));
}

/**
 * Verify the envelope (see dsse.verifyEnvelope for `at`) and parse its statement. Throws
 * INTEGRITY when no valid trusted signature exists, BAD_INPUT when the content is malformed.
 * The statement is parsed from the verified payload bytes, never re-decoded separately.
 */
export function verifyStatement(
  env: Envelope | unknown,
  trust: TrustResolver,
  at?: Date,
  opts: { predicateType?: string } = {},
): { statement: Statement; verification: VerifyResult } {
  const verification = verifyEnvelope(env, trust, at);
  if (!verification.ok) {
    throw new CryptoError('BAD_SIGNATURE', 'attestation has no valid trusted signature', { signatures: verification.signatures });
  }
  if (verification.payloadType !== INTOTO_PAYLOAD_TYPE) {
    throw new CryptoError('WRONG_PAYLOAD_TYPE', `payloadType is ${verification.payloadType}, expected ${INTOTO_PAYLOAD_TYPE}`);
  }
  const statement = parseStatement(verification.payload);
  if (opts.predicateType !== undefined && statement.predicateType !== opts.predicateType) {
    throw new CryptoError('WRONG_PREDICATE_TYPE', `predicateType is ${statement.predicateType}, expected ${opts.predicateType}`);
  }
  return { statement, verification };
}

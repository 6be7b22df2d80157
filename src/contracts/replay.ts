/** HTTP contract of replay: recorded runs, online verification, ledger checks, offline kits and sync. */
import { z } from 'zod';
import { Limit, QueryBool } from './common';

// ---- requests

export const ScanIdParams = z.object({ scanId: z.string().min(1) });
export const ListRunsQuery = z.object({ artifact: z.string().optional(), limit: Limit(1000, 50), tenant: z.string().optional() });
export const VerifyRunQuery = z.object({ ledger: QueryBool.optional(), tenant: z.string().optional() });
export const VerifyRunBody = z.object({ strict: z.boolean().optional() }).nullish();

export const ReplayProblem = z.object({ code: z.string(), detail: z.string(), severity: z.enum(['error', 'warning']) });

/** An offline verification log (verify.json written by `stella replay --log-dir`). */
export const SyncBody = z.looseObject({
  scanId: z.string().min(1),
  ok: z.boolean(),
  problems: z.array(z.object({ code: z.string(), detail: z.string(), severity: z.enum(['error', 'warning']) })),
  verifiedAt: z.string().optional(),
});

// ---- responses

export const ReplayRun = z.object({
  tenant: z.string(),
  scanId: z.string(),
  artifactDigest: z.string(),
  manifestDigest: z.string(),
  envelopeDigest: z.string(),
  inputDigest: z.string(),
  outputDigest: z.string(),
  inputSize: z.number(),
  outputSize: z.number(),
  verdict: z.string(),
  scannerVersion: z.string(),
  createdAt: z.string(),
  lastVerifiedAt: z.string().nullable(),
  lastResult: z.string().nullable(),
  lastCodes: z.array(z.string()),
});
export const ReplayRunList = z.object({ runs: z.array(ReplayRun) });

export const LedgerCheck = z.object({
  ok: z.boolean(),
  manifest: z.string(),
  reason: z.string().optional(),
  anchor: z.string().nullable().optional(),
  leafIndex: z.number().nullable().optional(),
  treeSize: z.number().nullable().optional(),
  signer: z.string().optional(),
  detail: z.string().optional(),
});

const Verdict = z.object({ status: z.enum(['pass', 'fail']), policyId: z.string(), counts: z.record(z.string(), z.number()), reasons: z.array(z.string()) });

export const ReplayResult = z.object({
  ok: z.boolean(),
  strict: z.boolean(),
  scanId: z.string().nullable(),
  artifactDigest: z.string().nullable(),
  signer: z.array(z.object({ keyid: z.string(), valid: z.boolean(), trusted: z.boolean(), reason: z.string() })),
  recorded: z.object({ verdict: z.string().nullable(), counts: z.record(z.string(), z.number()).nullable() }),
  recomputed: Verdict.nullable(),
  problems: z.array(ReplayProblem),
  diff: z
    .object({
      findingsAdded: z.array(z.string()),
      findingsRemoved: z.array(z.string()),
      findingsChanged: z.array(z.string()),
      verdict: z.object({ recorded: z.string(), recomputed: z.string() }).optional(),
    })
    .nullable(),
  /** With `?ledger=true`. */
  ledger: LedgerCheck.optional(),
});
export type ReplayResultBody = z.infer<typeof ReplayResult>;

export const RunExplain = z.object({
  last_result: z.string().nullable(),
  last_codes: z.array(z.string()).nullable(),
  last_explain: z.unknown(),
  last_verified_at: z.string().nullable(),
});

/** The files of an offline kit: manifest, DSSE envelope, base64 bundles and the RootPack to trust. */
export const RunKit = z.object({
  /** Validated by the receiver against the replay manifest JSON schema (schemas/replay-manifest.schema.json). */
  manifest: z.unknown(),
  envelope: z.object({
    payloadType: z.string(),
    payload: z.string(),
    signatures: z.array(z.object({ keyid: z.string(), sig: z.string() })),
  }),
  input: z.string(),
  output: z.string(),
  /** A RootPack; the receiver loads it with its digest check. */
  rootpack: z.unknown(),
});

export const SyncResponse = z.object({ scanId: z.string(), result: z.enum(['passed', 'failed']), codes: z.array(z.string()) });

/**
 * HTTP contract of Merkle anchoring (SP-003, INC-003): /evidence/anchors* and /evidence/:id/proof.
 * Response schemas are complete (every field the core returns), so serialising through them loses nothing.
 */
import { z } from 'zod';

const ChainStatus = z.enum(['active', 'archived']);

// ---- requests

/** `:id` of an anchor: 8-64 hex characters (a unique prefix) or `latest` where allowed. */
export const AnchorIdParams = z.object({ id: z.string().min(1).max(64) });
export const EvidenceIdParams = z.object({ id: z.string().min(1) });

export const CreateAnchorBody = z
  .object({ reason: z.string().min(1).max(500).optional(), force: z.boolean().optional() })
  .strict()
  .nullish();
/** Seconds `POST /evidence/anchors` waits for its workflow before answering 202 with a status URL. */
export const ANCHOR_WAIT_DEFAULT_S = 15;
export const CreateAnchorQuery = z.object({ wait: z.coerce.number().int().min(0).max(300).optional() });
export const AnchorRunParams = z.object({ workflowId: z.string().min(1).max(200) });
export const VerifyAnchorsBody = z
  .object({ scope: z.enum(['latest', 'all']).default('latest'), verbose: z.boolean().optional(), rootPack: z.unknown().optional() })
  .strict()
  .nullish();
export const NewChainBody = z.object({ reason: z.string().trim().min(1, 'reason is required').max(500) }).strict();
export const RecoverAnchorBody = z
  .object({ source: z.string().min(1).max(4096).default('backup') })
  .strict()
  .nullish();
export const ListAnchorsQuery = z.object({
  before: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  chain: z.string().optional(),
  links: z.enum(['true', 'false']).optional(),
  tenant: z.string().optional(),
});
export const ProofQuery = z.object({ anchor: z.string().optional(), tenant: z.string().optional() });

// ---- responses

export const AnchorView = z.object({
  id: z.string(),
  chainId: z.string(),
  seq: z.number().int(),
  logSize: z.number().int(),
  rootHash: z.string(),
  prevAnchorHash: z.string().nullable(),
  kid: z.string(),
  createdAt: z.string(),
  status: z.string(),
  reason: z.string().nullable(),
  jws: z.string().optional(),
});
export type AnchorView = z.infer<typeof AnchorView>;

export const ArchivedVerify = z.object({
  ok: z.boolean(),
  firstBreak: z.object({ anchorId: z.string(), reason: z.string(), detail: z.string(), seq: z.number().nullable() }).nullable(),
  logRows: z.array(z.number()),
});

export const ChainView = z.object({
  id: z.string(),
  startedAt: z.string(),
  reason: z.string(),
  status: ChainStatus,
  archivedAt: z.string().nullable(),
  prevChainId: z.string().nullable(),
  prevChainHeadHash: z.string().nullable(),
  archivedVerify: ArchivedVerify.nullable(),
});
export type ChainView = z.infer<typeof ChainView>;

export const ListedAnchor = AnchorView.extend({
  link: z.enum(['ok', 'genesis', 'broken', 'unknown']).optional(),
  linkDetail: z.string().optional(),
});
export type ListedAnchor = z.infer<typeof ListedAnchor>;
export const AnchorList = z.object({ anchors: z.array(ListedAnchor), chains: z.array(ChainView) });

export const AnchorVerifySummary = z.object({
  ok: z.boolean(),
  scope: z.enum(['latest', 'all']),
  checked: z.number(),
  total: z.number(),
  firstBreak: z.object({ anchorId: z.string(), reason: z.string(), detail: z.string() }).nullable(),
  logRows: z.number(),
});

/**
 * 201 when an anchor was signed, 200 when skipped (no new leaves) or already made by this request;
 * 202 `running` (with `statusUrl`) when the workflow did not finish within `?wait=` seconds.
 */
export const CreateAnchorResponse = z.object({
  workflowId: z.string(),
  status: z.enum(['created', 'skipped', 'existing', 'running']),
  message: z.string(),
  /** Where to follow a `running` anchoring: GET /evidence/anchors/runs/:workflowId. */
  statusUrl: z.string().optional(),
  anchor: AnchorView.nullable(),
  leavesRead: z.number(),
  logSize: z.number(),
  verify: AnchorVerifySummary.nullable().optional(),
});
export type CreateAnchorResponse = z.infer<typeof CreateAnchorResponse>;

/** `GET /evidence/anchors/runs/:workflowId`: the Temporal status, the result, or why it failed. */
export const AnchorRunStatus = z.object({
  workflowId: z.string(),
  status: z.string(),
  result: CreateAnchorResponse.nullable(),
  /** The root cause's message when the workflow failed. */
  error: z.string().nullable(),
  /** The failure's StellaError code (BAD_INPUT, INTEGRITY…): the CLI's exit code follows it. */
  errorCode: z.string().nullable(),
});
export type AnchorRunStatus = z.infer<typeof AnchorRunStatus>;

export const AnchorBreak = z.object({
  chainId: z.string(),
  anchorId: z.string(),
  seq: z.number().nullable(),
  reason: z.string(),
  detail: z.string(),
  /** The tampering the break points to: rewritten-leaf, truncated-log or forked-checkpoint. */
  tamper: z.string().optional(),
  acknowledged: z.boolean().optional(),
});
export type AnchorBreak = z.infer<typeof AnchorBreak>;

export const LogRowBreak = z.object({
  seq: z.number(),
  tenant: z.string(),
  itemId: z.string(),
  detail: z.string(),
  acknowledged: z.boolean().optional(),
});

export const ChainReport = z.object({
  id: z.string(),
  status: ChainStatus,
  reason: z.string(),
  anchors: z.number(),
  checked: z.number(),
  ok: z.boolean(),
  firstBreak: AnchorBreak.nullable(),
});

export const VerifyStep = z.object({
  anchorId: z.string(),
  chainId: z.string(),
  seq: z.number(),
  logSize: z.number(),
  ok: z.boolean(),
  detail: z.string(),
});
export type VerifyStep = z.infer<typeof VerifyStep>;

export const AnchorVerifyResponse = z.object({
  ok: z.boolean(),
  scope: z.enum(['latest', 'all']),
  checked: z.number(),
  total: z.number(),
  firstBreak: AnchorBreak.nullable(),
  breaks: z.array(AnchorBreak),
  logRows: z.array(LogRowBreak),
  chains: z.array(ChainReport),
  latest: AnchorView.nullable(),
  leavesHashed: z.number(),
  verifiedAt: z.string(),
  /** C2SP checkpoints verified, and anchors made before checkpoints existed. */
  checkpoints: z.object({ checked: z.number(), without: z.number() }).optional(),
  /** Stored RFC 3161 tokens, re-verified. */
  timestamps: z.array(z.object({ anchorId: z.string(), ok: z.boolean(), genTime: z.string().nullable(), problem: z.string().nullable() })).optional(),
  /** k-of-n witness policy: anchors below the quorum do not count as verified. */
  witness: z.object({ quorum: z.number(), configured: z.number(), unwitnessed: z.array(z.object({ anchorId: z.string(), valid: z.number() })) }).optional(),
  /** Only with `verbose`. */
  steps: z.array(VerifyStep).optional(),
});

export const NewChainResponse = z.object({
  oldChainId: z.string().nullable(),
  oldHeadHash: z.string().nullable(),
  chainId: z.string(),
  anchor: AnchorView,
  rebuiltNodes: z.number(),
  logSize: z.number(),
  oldChainVerify: ArchivedVerify,
});

const Check = z.object({ ok: z.boolean(), detail: z.string() });
export const AnchorInspection = z.object({
  anchor: AnchorView,
  jwsHashMatchesId: z.boolean(),
  signature: Check,
  link: Check,
  chain: ChainView.nullable(),
  previousId: z.string().nullable(),
  nextId: z.string().nullable(),
});

export const AnchorPayload = z.object({
  v: z.number(),
  chainId: z.string(),
  seq: z.number(),
  logSize: z.number(),
  rootHash: z.string(),
  prevAnchorHash: z.string().nullable(),
  createdAt: z.string(),
  kid: z.string(),
});

export const ExportedInclusion = z.object({ leafIndex: z.number(), treeSize: z.number(), leafHash: z.string(), proof: z.array(z.string()) });

/** `anchor export`: verifiable offline with the public key alone (stella.anchor-export.v1). */
export const ExportedAnchor = z.object({
  format: z.string(),
  anchor: z.string(),
  anchorHash: z.string(),
  publicJwk: z.looseObject({ kty: z.string().optional() }),
  keyThumbprint: z.string(),
  payload: AnchorPayload,
  inclusion: ExportedInclusion.optional(),
});

/** `evidence proof`: an anchor export with the inclusion of one evidence item's leaf (stella.inclusion-proof.v1). */
export const InclusionProofFile = ExportedAnchor.extend({
  proofFormat: z.string(),
  inclusion: ExportedInclusion,
  evidence: z.object({
    id: z.string(),
    tenant: z.string(),
    leafIndex: z.number(),
    leaf: z.string(),
    decoded: z.object({ id: z.string(), kind: z.string(), subjects: z.array(z.string()), tenant: z.string(), time: z.string() }),
  }),
});

export const RecoverAnchorResponse = z.object({
  anchor: AnchorView,
  source: z.string(),
  replaced: z.boolean(),
  before: AnchorView.nullable(),
});

const AnchorIdString = z.string().regex(/^[0-9a-fA-F]{8,64}$/, 'expected an anchor id (8-64 hex characters)');

/** GET /evidence/anchors/consistency?from=&to= */
export const ConsistencyQuery = z.object({ from: AnchorIdString, to: AnchorIdString });

const AnchorEnd = z.object({ id: z.string(), logSize: z.number(), rootHash: z.string() });
/** RFC 9162 §2.1.4 consistency proof between two anchors, checked against both signed roots. */
export const ConsistencyResponse = z.object({
  ok: z.boolean(),
  from: AnchorEnd,
  to: AnchorEnd,
  proof: z.array(z.string()),
  problem: z.enum(['forked-checkpoint', 'rewritten-log']).nullable(),
  detail: z.string(),
});
export type ConsistencyResponse = z.infer<typeof ConsistencyResponse>;

/** POST /evidence/anchors/:id/cosignatures: a witness's cosigned checkpoint, or its cosignature/v1 signature line(s). */
export const CosignatureBody = z.object({ cosignature: z.string().min(1).max(65536) }).strict();

const StoredCosignature = z.object({ witness: z.string(), keyId: z.string(), signedAt: z.string(), line: z.string() });
export const CosignatureResponse = z.object({ anchorId: z.string(), added: z.array(StoredCosignature) });

/** GET /evidence/anchors/:id/checkpoint: the anchor in the standard formats. */
export const AnchorCheckpoint = z.object({
  anchorId: z.string(),
  /** The C2SP signed note, witness cosignature lines appended; null for anchors made before checkpoints. */
  checkpoint: z.string().nullable(),
  cosignatures: z.array(StoredCosignature),
  timestamp: z.object({ tsaUrl: z.string(), genTime: z.string(), token: z.string() }).nullable(),
  /** Checkpoint verifier keys (vkeys) for note.NewVerifier; witness policy. */
  vkeys: z.array(z.object({ kid: z.string(), status: z.string(), name: z.string(), vkey: z.string() })),
  witness: z.object({ quorum: z.number(), witnesses: z.array(z.object({ name: z.string(), keyId: z.string(), vkey: z.string() })), valid: z.number() }),
});
export type AnchorCheckpoint = z.infer<typeof AnchorCheckpoint>;

/**
 * HTTP contract of promotions (/promotions*) and promotion policies (/promotion-policies*).
 * Response schemas list every field the server sends (plain objects: interfaces of core fit them);
 * policy documents are loose, as their requirement kinds carry different fields.
 */
import { z } from 'zod';

export const PROMOTION_STATES = ['evaluating', 'waiting-evidence', 'waiting-approval', 'promoted', 'failed', 'aborted'] as const;
export const PromotionState = z.enum(PROMOTION_STATES);
export const WAIT_MAX_S = 300;

// ---- requests

export const PromotionIdParams = z.object({ id: z.string().min(1) });
export const PolicyEnvParams = z.object({ env: z.string().min(1) });

/** Digests and environments are strings here: the route checks them with the messages operators know. */
export const StartPromotionBody = z
  .object({
    artifact: z.string().optional(),
    artifactDigest: z.string().optional(),
    to: z.string().optional(),
    toEnv: z.string().optional(),
    from: z.string().optional(),
    fromEnv: z.string().optional(),
    imageRef: z.string().min(1).max(512).optional(),
    wait: z.union([z.boolean(), z.number().int().min(0).max(WAIT_MAX_S)]).optional(),
  })
  .strict();

/** `?wait=true|<seconds>&timeout=<seconds>` (long-poll for the final result). */
export const StartPromotionQuery = z.looseObject({ wait: z.string().optional(), timeout: z.string().optional() });

export const ListPromotionsQuery = z.looseObject({
  state: PromotionState.optional(),
  artifact: z.string().optional(),
  env: z.string().optional(),
  limit: z.string().optional(),
  /** `db`: the promotions table instead of Temporal visibility. */
  source: z.string().optional(),
});

export const EvidenceQuery = z.looseObject({ missing: z.string().optional() });
export const RetryQuery = z.looseObject({ mode: z.enum(['update', 'signal']).optional() });
export const SignalBody = z.object({ reason: z.string().max(1000).optional(), comment: z.string().max(1000).optional() }).nullish();
export const SetPolicyBody = z.object({
  document: z
    .string()
    .min(1)
    .max(256 * 1024),
});
export const ShowPolicyQuery = z.looseObject({ env: z.string().optional() });

// ---- responses

export const MissingEvidence = z.object({ kind: z.string(), predicateType: z.string().optional(), command: z.string() });

/** An evidence item as a gate saw it: how it was made (signed, produced-by-stella, uploaded) and by which key. */
export const GateEvidence = z.object({
  id: z.string(),
  kind: z.string(),
  provenance: z.enum(['signed', 'produced-by-stella', 'uploaded']),
  signer: z.string().nullable(),
});
export const ConsideredEvidence = GateEvidence.extend({
  accepted: z.boolean(),
  rule: z.string().optional(),
  problem: z.string().optional(),
  stellaKey: z.boolean().optional(),
});

export const GateResult = z.object({
  name: z.string(),
  required: z.boolean(),
  passed: z.boolean(),
  /** Why it passed or failed, naming the evidence, its provenance/signer and the policy rule. */
  detail: z.string(),
  evidenceId: z.string().optional(),
  evidence: GateEvidence.optional(),
  /** The policy rule the gate applied. */
  rule: z.string().optional(),
  considered: z.array(ConsideredEvidence).optional(),
  missing: MissingEvidence.optional(),
  violation: z.boolean().optional(),
});
export type GateResult = z.infer<typeof GateResult>;

export const Approval = z.object({ by: z.string(), at: z.string(), comment: z.string().optional() });

/** The parts of a promotion's state that are known before the first evaluation too. */
const statusCore = {
  id: z.string().optional(),
  promotionId: z.string(),
  workflowId: z.string(),
  state: PromotionState,
  gates: z.array(GateResult),
  attempts: z.number().int(),
  deadline: z.string().nullable(),
  approvals: z.array(Approval),
};
const statusDetail = {
  tenant: z.string().optional(),
  artifactDigest: z.string().optional(),
  fromEnv: z.string().optional(),
  toEnv: z.string().optional(),
  requestedBy: z.string().optional(),
  imageRef: z.string().nullable().optional(),
  approvalsRequired: z.number().int().optional(),
  autoGenerate: z.boolean().optional(),
  policy: z.object({ env: z.string(), version: z.number().int().nullable(), checksum: z.string() }).nullable().optional(),
  reason: z.string().nullable().optional(),
  temporalStatus: z.string().optional(),
  createdAt: z.string().optional(),
  updatedAt: z.string().optional(),
  finishedAt: z.string().nullable().optional(),
  /** The run's page in the Temporal Web UI (the API's STELLA_TEMPORAL_UI_URL). */
  temporalUiUrl: z.string().optional(),
};

/** One promotion: its database record with the live workflow state over it while it runs. */
export const PromotionView = z.object({ ...statusCore, ...statusDetail });
export type PromotionView = z.infer<typeof PromotionView>;

/** 202 when started (or joined); with `wait`, the state too, and `final` (200 when it finished in time). */
export const StartPromotionResponse = PromotionView.partial().extend({
  id: z.string(),
  promotionId: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  joined: z.boolean(),
  message: z.string(),
  final: z.boolean().optional(),
  /** `--image <registry ref>`: the reference as given (the promotion works on its digest, `imageRef` pinned). */
  resolvedFrom: z.string().optional(),
  /** The `promote` auto-scan trigger's event, when it queued a scan of this unscanned digest. */
  scan: z.looseObject({ eventId: z.number(), status: z.string(), reason: z.string().optional(), workflowId: z.string().optional() }).optional(),
});
export type StartPromotionResponse = z.infer<typeof StartPromotionResponse>;

export const ListedPromotion = z.object({
  id: z.string(),
  promotionId: z.string(),
  status: z.string(),
  state: z.string().nullable(),
  artifact: z.string().nullable(),
  env: z.string().nullable(),
  startTime: z.string(),
  closeTime: z.string().nullable(),
});
export const ListPromotionsResponse = z.discriminatedUnion('source', [
  z.object({ source: z.literal('temporal-visibility'), query: z.string(), items: z.array(ListedPromotion) }),
  z.object({ source: z.literal('db'), items: z.array(PromotionView) }),
]);

export const MissingRow = z.object({
  gate: z.string(),
  detail: z.string(),
  kind: z.string().optional(),
  predicateType: z.string().optional(),
  command: z.string().optional(),
});
export const PromotionEvidenceResponse = z.object({
  id: z.string(),
  promotionId: z.string(),
  artifact: z.string().optional(),
  to: z.string().optional(),
  state: PromotionState,
  deadline: z.string().nullable(),
  gates: z.array(GateResult).optional(),
  missing: z.array(MissingRow),
});

/** A signal delivered (retry without waiting). */
export const SignalledResponse = z.object({ id: z.string(), promotionId: z.string(), message: z.string() });
/** Approve or abort through the workflow's update: the resulting state (promoted, aborted, or still waiting for more approvals). */
export const ActionResponse = PromotionView.extend({ id: z.string(), message: z.string() });
export type ActionResponse = z.infer<typeof ActionResponse>;
/** Retry through the update: the new state and what is still missing. */
export const RetryResponse = PromotionView.extend({ missing: z.array(MissingRow) });

export const PolicyDocument = z.looseObject({
  requirements: z.array(z.looseObject({ kind: z.string(), name: z.string(), required: z.boolean() })),
  maxEvidenceAge: z.string(),
  autoGenerate: z.boolean(),
  waitDeadline: z.string(),
  requireApproval: z.boolean(),
  approvals: z.number().int(),
});
export const PolicyView = z.object({
  env: z.string().optional(),
  source: z.string(),
  policyEnv: z.string(),
  version: z.number().int().nullable(),
  checksum: z.string(),
  createdAt: z.string().nullable().optional(),
  createdBy: z.string().nullable().optional(),
  policy: PolicyDocument,
});
export type PolicyView = z.infer<typeof PolicyView>;
export const ShowPolicyResponse = z.object({
  promotion: z.union([PolicyView, z.object({ policies: z.array(PolicyView), builtIn: PolicyView })]),
});
export const PolicyChange = z.object({ path: z.string(), from: z.unknown().optional(), to: z.unknown().optional() });
/** A stored change carries the previous version and what changed (the same diff the audit entry holds). */
export const SetPolicyResponse = z.object({
  env: z.string(),
  version: z.number().int(),
  checksum: z.string(),
  changed: z.boolean(),
  policy: PolicyDocument,
  previousVersion: z.number().int().nullable().optional(),
  diff: z.array(PolicyChange).optional(),
});

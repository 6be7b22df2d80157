/**
 * Shapes shared by the promotion workflow, its activities, the API and the CLI. Type-only
 * (plus constants), so the workflow sandbox can import it.
 */

export const PROMOTION_STATES = ['evaluating', 'waiting-evidence', 'waiting-approval', 'promoted', 'failed', 'aborted'] as const;
export type PromotionStateName = (typeof PROMOTION_STATES)[number];
export const FINAL_STATES: readonly PromotionStateName[] = ['promoted', 'failed', 'aborted'];

export interface PromotionInput {
  tenant: string;
  artifactDigest: string;
  fromEnv: string;
  toEnv: string;
  requestedBy: string;
  imageRef?: string;
}

export interface MissingEvidence {
  kind: string;
  predicateType?: string;
  /** The command that produces it (runbook "Immediate mitigation"). */
  command: string;
}

/** An evidence item as a gate saw it: how it was made and by whom. */
export interface GateEvidence {
  id: string;
  kind: string;
  provenance: 'signed' | 'produced-by-stella' | 'uploaded';
  signer: string | null;
}

/** A candidate a signed gate judged, and why it did or did not count (for --explain). */
export interface ConsideredEvidence extends GateEvidence {
  accepted: boolean;
  /** The policy signer it satisfied. */
  rule?: string;
  problem?: string;
  /** Signed by one of stella's own keys. */
  stellaKey?: boolean;
}

export interface GateResult {
  name: string;
  required: boolean;
  passed: boolean;
  /** Why it passed or failed, naming the evidence, its provenance/signer and the rule. */
  detail: string;
  evidenceId?: string;
  /** The evidence that decided (passing), or the newest one considered (failing). */
  evidence?: GateEvidence;
  /** The policy rule applied: kind, signers, predicate type, thresholds, max age. */
  rule?: string;
  considered?: ConsideredEvidence[];
  missing?: MissingEvidence;
  /** Present but failing (e.g. critical findings): regenerating the same evidence will not help. */
  violation?: boolean;
}

export interface Approval {
  by: string;
  at: string;
  comment?: string;
}

/**
 * What approve, abort and retry carry (update or signal): the action token the API minted for
 * this caller and promotion, and the caller's name (checked against the token's subject).
 * Fields are optional because anyone with Temporal access can send anything.
 */
export interface ActionPayload {
  token?: string;
  by?: string;
  comment?: string;
  reason?: string;
}

export interface PromotionStatus {
  promotionId: string;
  workflowId: string;
  tenant: string;
  artifactDigest: string;
  fromEnv: string;
  toEnv: string;
  requestedBy: string;
  imageRef: string | null;
  state: PromotionStateName;
  gates: GateResult[];
  attempts: number;
  deadline: string | null;
  approvals: Approval[];
  approvalsRequired: number;
  autoGenerate: boolean;
  policy: { env: string; version: number | null; checksum: string } | null;
  reason: string | null;
}

/** What evaluateGates needs and returns; policy travels as the resolved document. */
export interface EvaluateGatesInput {
  promotionId: string;
  workflowId: string;
  attempt: number;
  input: PromotionInput;
}

export interface EvaluateGatesResult {
  gates: GateResult[];
  imageRef: string | null;
  policy: {
    env: string;
    version: number | null;
    checksum: string;
    autoGenerate: boolean;
    waitDeadlineMs: number;
    requireApproval: boolean;
    approvals: number;
  };
  /** Whether missing evidence may be generated (the workflow starts scanThenAttest by reference, so every build has it). */
  generatorAvailable: boolean;
  evaluationMs: number;
}

/** The exact failure message when the deadline passes (runbook symptom). */
export const evidenceNotFoundMessage = (kinds: string[]) => `required evidence not found: ${kinds.join(',')}`;

import {
  ApplicationFailure,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  allHandlersFinished,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  log,
  patched,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ActionVerdict } from '../src/core/promotion/actions';
import type { ActionPayload, EvaluateGatesResult, GateResult, PromotionInput, PromotionStateName, PromotionStatus } from '../src/core/promotion/types';
import { SA, scanWorkflowId } from '../src/temporal/names';
import { missingKinds, promotionCurrentDetails, promotionMemo } from '../src/temporal/promotion-details';
import { scanThenAttest } from './scan';

// Constants are repeated here (not imported from src/core) so the workflow bundle stays free of runtime imports.
const FINAL: readonly string[] = ['promoted', 'failed', 'aborted'];
/** How long to wait before re-checking when a scan of the artifact is already running elsewhere. */
const GENERATION_RECHECK = '1 minute';
const MAX_GENERATION_ROUNDS = 3;

export const promotionStateQuery = defineQuery<PromotionStatus>('state');
const HANDLER_DESCRIPTIONS = {
  state: 'The promotion as stella sees it: state, each gate with its evidence, missing kinds, deadline, approvals.',
  approveUpdate: 'Approve (needs an action token from `stella promotion approve`; the requester cannot approve). Answers with the resulting state.',
  abortUpdate: 'Abort (needs an action token from `stella promotion abort`). Answers with the final state.',
  retryUpdate: 'Re-evaluate the gates now, after adding evidence (action token from `stella promotion retry`). Answers with the new gate results.',
  retrySignal: 'Re-evaluate the gates (needs an action token; use `stella promotion retry`).',
  approveSignal: 'Always refused and audited: approval is the `approve` update (`stella promotion approve`).',
  abortSignal: 'Always refused and audited: abort is the `abort` update (`stella promotion abort`).',
} as const;
/** Approve, abort and retry need an action token minted by the stella API (checked in an activity). */
export const promotionApproveUpdate = defineUpdate<PromotionStatus, [ActionPayload]>('approve');
export const promotionAbortUpdate = defineUpdate<PromotionStatus, [ActionPayload]>('abort');
export const promotionRetryUpdate = defineUpdate<PromotionStatus, [ActionPayload]>('retry');
export const promotionRetrySignal = defineSignal<[ActionPayload]>('retry');
/** Answered only to reject and audit: a signal typed into the Temporal UI or CLI never approves or aborts. */
export const promotionApproveSignal = defineSignal<[ActionPayload]>('approve');
export const promotionAbortSignal = defineSignal<[ActionPayload]>('abort');
/** Histories from before action tokens replay with the old (unchecked) handlers; every new action is checked. */
const SIGNED_ACTIONS = 'stella-signed-actions';
/**
 * Readable in the Temporal UI (issue 16): memo, StellaMissingEvidence, summaries on the wait timers
 * and local activities. Runs that started before it replay without these commands.
 */
const UI_DETAILS = 'stella-promotion-ui-details';

// Gate evaluation and bookkeeping are short DB/blob operations: local activities keep a
// promotion to a handful of workflow tasks (throughput), retried with backoff on faults.
const localOptions: LocalActivityOptions = {
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 },
};
const acts = proxyLocalActivities<Activities>(localOptions);

/**
 * publish (opt-in per environment, src/core/oci-attest/auto.ts): after `promoted`, stella's
 * attestations go to the image's registry. Runs that started before it replay without the step;
 * runs whose finalize result says the environment does not publish skip it (and this marker).
 */
const PUBLISH_ATTESTATIONS = 'stella-publish-attestations';
/** Evidence missing: once per promotion, import the verified attestations the image's registry holds (src/core/oci-attest/auto.ts). */
const REGISTRY_EVIDENCE = 'stella-registry-evidence';
const publishActs = proxyLocalActivities<Activities>({ ...localOptions, retry: { ...localOptions.retry, maximumAttempts: 3 } });

/** What to do after an evaluation: the runbook's branches. */
type NextStep = { kind: 'promote' } | { kind: 'violation'; gates: GateResult[] } | { kind: 'generate' } | { kind: 'wait'; kinds: string[] };

/** Pure (not exported: every export of a workflow module is a workflow type): passed → promote; a violation fails at once; missing evidence is generated (policy) or waited for. */
function nextStep(r: EvaluateGatesResult, canGenerate: boolean): NextStep {
  const blocking = r.gates.filter((g) => g.required && !g.passed);
  if (!blocking.length) return { kind: 'promote' };
  const violations = blocking.filter((g) => g.violation);
  if (violations.length) return { kind: 'violation', gates: violations };
  if (r.policy.autoGenerate && r.generatorAvailable && canGenerate) return { kind: 'generate' };
  return { kind: 'wait', kinds: [...new Set(blocking.map((g) => g.missing?.kind ?? g.name))] };
}

/**
 * Promotion of an artifact into an environment, gated on evidence (release-orchestrator
 * runbook): gatherEvidence → decideGates → record (the evaluateGates local activity); when
 * evidence is missing either generate it (child scanThenAttest, policy autoGenerate) or wait
 * for the operator's `retry` until the policy deadline, then fail with `required evidence not
 * found: <kinds>`. Optional manual approval. On pass, record the promotion (row + audit + event).
 */
export async function promotion(input: PromotionInput): Promise<PromotionStatus> {
  const run = new PromotionRun(input);
  run.installHandlers();
  return run.run();
}

type ActionOp = 'approve' | 'abort' | 'retry';

/** One promotion's state and its steps; the workflow function above is the whole procedure. */
class PromotionRun {
  private readonly info = workflowInfo();
  readonly st: PromotionStatus;
  /** Retries asked for, and the retry the latest evaluation answered. */
  private retrySeq = 0;
  private evaluatedSeq = 0;
  private aborted: { by: string; reason?: string } | null = null;
  /** One action is verified at a time, so each sees the state (and approvals) the previous one left. */
  private actionChain: Promise<unknown> = Promise.resolve();
  /** Fixed by the first evaluation (recorded in history): start time + policy waitDeadline. */
  private deadlineMs = 0;
  /** Whether this run records the UI details (UI_DETAILS patch), and what it last recorded. */
  private ui = false;
  private shownMemo = '';
  private shownMissing = '';
  /** The registry was searched for missing evidence (REGISTRY_EVIDENCE patch; once per promotion). */
  private lookedInRegistry = false;

  constructor(private readonly input: PromotionInput) {
    this.st = {
      promotionId: this.info.firstExecutionRunId,
      workflowId: this.info.workflowId,
      tenant: input.tenant,
      artifactDigest: input.artifactDigest,
      fromEnv: input.fromEnv,
      toEnv: input.toEnv,
      requestedBy: input.requestedBy,
      imageRef: input.imageRef ?? null,
      state: 'evaluating',
      gates: [],
      attempts: 0,
      deadline: null,
      approvals: [],
      approvalsRequired: 0,
      autoGenerate: false,
      policy: null,
      reason: null,
    };
  }

  async run(): Promise<PromotionStatus> {
    const { input, st } = this;
    this.ui = patched(UI_DETAILS);
    this.showDetails();
    upsertSearchAttributes([
      { key: SA.tenant, value: input.tenant },
      { key: SA.artifact, value: input.artifactDigest },
      { key: SA.environment, value: input.toEnv },
      { key: SA.promotionState, value: 'evaluating' },
    ]);
    try {
      const gated = await this.untilGatesPass();
      if (gated.outcome === 'stopped') return gated.status;
      if (gated.policy.requireApproval) {
        const stopped = await this.awaitApproval(gated.policy.waitDeadlineMs);
        if (stopped) return stopped;
      }
      const outcome = await this.finish('promoted', null, input.requestedBy);
      // Only when the environment publishes: the finalize result says so (`publish`, recorded in history).
      // Results recorded before it have no `publish` and keep the step, so their histories replay;
      // a run that skips it records neither the marker nor the step.
      if (outcome.publish !== false && patched(PUBLISH_ATTESTATIONS)) await this.publishAttestations();
      return st;
    } catch (e) {
      // Unexpected failures (e.g. an invalid stored policy) still leave a final record.
      if (e instanceof ApplicationFailure && e.nonRetryable && FINAL.includes(st.state)) throw e;
      // An activity failure's own message is generic ("Activity task failed"): report its cause.
      const message = ((e as { cause?: Error }).cause?.message ?? (e as Error).message) || String(e);
      log.error('promotion failed unexpectedly', { error: message });
      if (!FINAL.includes(st.state)) await this.finish('failed', `promotion error: ${message}`, 'system:promotion');
      throw ApplicationFailure.create({ message: `promotion error: ${message}`, type: 'PromotionError', nonRetryable: true, details: [st] });
    }
  }

  /** Evaluate → promote, fail on a violation, generate missing evidence, or wait for the operator's retry. */
  private async untilGatesPass(): Promise<{ outcome: 'passed'; policy: EvaluateGatesResult['policy'] } | { outcome: 'stopped'; status: PromotionStatus }> {
    let generationRounds = 0;
    for (;;) {
      const seq = this.retrySeq;
      const r = await this.evaluateGates();
      this.evaluatedSeq = seq;
      if (this.aborted) return { outcome: 'stopped', status: await this.abort() };

      const next = nextStep(r, generationRounds < MAX_GENERATION_ROUNDS && Date.now() < this.deadlineMs);
      if (next.kind === 'promote') {
        this.evaluatedSeq = this.retrySeq;
        return { outcome: 'passed', policy: r.policy };
      }
      if (next.kind === 'violation') {
        this.evaluatedSeq = this.retrySeq;
        return await this.fail(`policy gate failed: ${next.gates.map((g) => `${g.name}: ${g.detail}`).join('; ')}`, 'PromotionGateFailed');
      }
      if (next.kind === 'generate') {
        generationRounds++;
        await generateMissing(
          this.input,
          this.st,
          r.gates.filter((g) => g.required && !g.passed),
          this.deadlineMs,
        );
        if (this.st.reason?.startsWith('a scan of'))
          await this.waitForRetry(GENERATION_RECHECK, 'a scan of this artifact is running elsewhere: re-check in 1 minute');
        if (this.aborted) return { outcome: 'stopped', status: await this.abort() };
        continue;
      }

      if (!this.lookedInRegistry && patched(REGISTRY_EVIDENCE) && (await this.importRegistryEvidence())) continue;
      await this.setState('waiting-evidence', `waiting for evidence: ${next.kinds.join(', ')} (stella promotion evidence --missing)`, true);
      const remaining = this.deadlineMs - Date.now();
      const woke =
        remaining > 0 && (await this.waitForRetry(remaining, `waiting for evidence: ${next.kinds.join(', ')} (until the deadline, or stella promotion retry)`));
      if (this.aborted) return { outcome: 'stopped', status: await this.abort() };
      if (!woke) return await this.fail(`required evidence not found: ${next.kinds.join(',')}`, 'EvidenceNotFound');
    }
  }

  /** Waits for the policy's approvals; the final status when aborted or timed out, else null. */
  private async awaitApproval(waitDeadlineMs: number): Promise<PromotionStatus | null> {
    const st = this.st;
    await this.setState('waiting-approval', `waiting for ${st.approvalsRequired} approval(s)`, true);
    const enough = () => st.approvals.length >= st.approvalsRequired || !!this.aborted;
    const approved = this.ui
      ? await condition(enough, waitDeadlineMs, { summary: `waiting for ${st.approvalsRequired} approval(s) (stella promotion approve)` })
      : await condition(enough, waitDeadlineMs);
    if (this.aborted) return await this.abort();
    if (!approved) return await this.fail(`approval not granted within ${Math.round(waitDeadlineMs / 60_000)} minutes`, 'ApprovalTimeout');
    return null;
  }

  /** gatherEvidence → decideGates → record this attempt (one local activity). */
  private async evaluateGates(): Promise<EvaluateGatesResult> {
    const st = this.st;
    if (st.state !== 'evaluating') await this.setState('evaluating', null, false);
    st.attempts++;
    const args = {
      promotionId: st.promotionId,
      workflowId: st.workflowId,
      attempt: st.attempts,
      input: this.input,
      startedAt: this.info.startTime.toISOString(),
    };
    const r = this.ui
      ? await acts.evaluateGates.executeWithOptions({ ...localOptions, summary: `evaluate gates (attempt ${st.attempts}): gather evidence, decide, record` }, [
          args,
        ])
      : await acts.evaluateGates(args);
    st.gates = r.gates;
    st.imageRef = r.imageRef;
    st.policy = { env: r.policy.env, version: r.policy.version, checksum: r.policy.checksum };
    st.autoGenerate = r.policy.autoGenerate;
    st.approvalsRequired = r.policy.requireApproval ? r.policy.approvals : 0;
    if (!this.deadlineMs) {
      this.deadlineMs = Date.parse(r.deadline);
      st.deadline = r.deadline;
    }
    setCurrentDetails(promotionCurrentDetails(st));
    return r;
  }

  /** Sleeps until the operator's retry (or an abort); false when the deadline passed first. */
  private waitForRetry(timeout: number | string, summary: string): Promise<boolean> {
    const woken = () => this.retrySeq > this.evaluatedSeq || !!this.aborted;
    return this.ui ? condition(woken, timeout, { summary }) : condition(woken, timeout);
  }

  /**
   * The UI's view of the state: current details (not a command, so on every run) and, for runs
   * with the UI_DETAILS marker, the memo and StellaMissingEvidence when they changed.
   */
  private showDetails(): void {
    const st = this.st;
    setCurrentDetails(promotionCurrentDetails(st));
    if (!this.ui) return;
    const memo = promotionMemo(st);
    const memoKey = JSON.stringify(memo);
    if (memoKey !== this.shownMemo) {
      this.shownMemo = memoKey;
      upsertMemo(memo);
    }
    const missing = st.state === 'waiting-evidence' ? missingKinds(st.gates) : [];
    if (missing.join(',') !== this.shownMissing) {
      this.shownMissing = missing.join(',');
      upsertSearchAttributes([{ key: SA.missingEvidence, value: missing }]);
    }
  }

  private async setState(state: PromotionStateName, reason: string | null, persist: boolean): Promise<void> {
    const st = this.st;
    st.state = state;
    st.reason = reason;
    upsertSearchAttributes([{ key: SA.promotionState, value: state }]);
    this.showDetails();
    if (!persist) return;
    const args = { tenant: this.input.tenant, promotionId: st.promotionId, state, reason, approvals: st.approvals };
    if (this.ui) await acts.promotionSetState.executeWithOptions({ ...localOptions, summary: `record state ${state}` }, [args]);
    else await acts.promotionSetState(args);
  }

  /** Looks in the image's registry for the missing evidence (once); true when something new was imported (evaluate again). */
  private async importRegistryEvidence(): Promise<boolean> {
    this.lookedInRegistry = true;
    try {
      const r = await publishActs.importRegistryEvidence({
        tenant: this.input.tenant,
        artifactDigest: this.input.artifactDigest,
        imageRef: this.st.imageRef,
        actor: this.input.requestedBy,
      });
      return r.imported > 0;
    } catch (e) {
      const message = ((e as { cause?: Error }).cause?.message ?? (e as Error).message) || String(e);
      log.warn('looking for evidence in the registry failed', { error: message });
      return false;
    }
  }

  /** publish: push the attestations when the environment opted in; a failure is logged, the promotion stands. */
  private async publishAttestations(): Promise<void> {
    const { input, st } = this;
    try {
      const r = await publishActs.publishAfterPromotion({
        tenant: input.tenant,
        artifactDigest: input.artifactDigest,
        imageRef: st.imageRef,
        toEnv: input.toEnv,
        actor: input.requestedBy,
      });
      if (r.published) log.info('attestations published to the registry', { repository: r.repository, pushed: r.pushed });
    } catch (e) {
      const message = ((e as { cause?: Error }).cause?.message ?? (e as Error).message) || String(e);
      log.warn('publishing attestations to the registry failed; the promotion stands', { error: message });
    }
  }

  /** record: the final row, audit entry and timeline event; for `promoted`, whether the environment publishes. */
  private async finish(state: 'promoted' | 'failed' | 'aborted', reason: string | null, actor: string): Promise<{ publish?: boolean }> {
    const st = this.st;
    st.state = state;
    st.reason = reason;
    upsertSearchAttributes([{ key: SA.promotionState, value: state }]);
    this.showDetails();
    const args = {
      tenant: this.input.tenant,
      promotionId: st.promotionId,
      state,
      actor,
      reason,
      gates: st.gates,
      approvals: st.approvals,
      toEnv: this.input.toEnv,
      imageRef: st.imageRef,
    };
    const r = this.ui
      ? await acts.promotionFinalize.executeWithOptions({ ...localOptions, summary: `record the outcome: ${state}` }, [args])
      : await acts.promotionFinalize(args);
    await condition(allHandlersFinished);
    return r;
  }

  private async fail(message: string, type: string): Promise<never> {
    await this.finish('failed', message, 'system:promotion');
    throw ApplicationFailure.create({ message, type, nonRetryable: true, details: [this.st] });
  }

  private async abort(): Promise<PromotionStatus> {
    const a = this.aborted ?? { by: 'unknown' };
    await this.finish('aborted', a.reason ?? `aborted by ${a.by}`, a.by);
    return this.st;
  }

  // ---- operator actions: approve, abort, retry -------------------------------------------------

  installHandlers(): void {
    const st = this.st;
    setHandler(promotionStateQuery, () => st, { description: HANDLER_DESCRIPTIONS.state });
    setHandler(
      promotionApproveUpdate,
      async (a) => {
        const by = await this.accept('approve', 'update', a);
        st.approvals.push({ by, at: new Date().toISOString(), ...(noteOf(a) ? { comment: noteOf(a) } : {}) });
        // Answers with the resulting state: promoted once the last approval is in, else still waiting.
        await condition(() => st.state !== 'waiting-approval' || st.approvals.length < st.approvalsRequired);
        return st;
      },
      { validator: this.validator('approve'), description: HANDLER_DESCRIPTIONS.approveUpdate },
    );
    setHandler(
      promotionAbortUpdate,
      async (a) => {
        const by = await this.accept('abort', 'update', a);
        this.aborted ??= { by, reason: noteOf(a) };
        await condition(() => FINAL.includes(st.state));
        return st;
      },
      { validator: this.validator('abort'), description: HANDLER_DESCRIPTIONS.abortUpdate },
    );
    setHandler(
      promotionRetryUpdate,
      async (a) => {
        if (patched(SIGNED_ACTIONS)) await this.accept('retry', 'update', a);
        const mine = ++this.retrySeq;
        // Resolves with the gate results of the evaluation that ran for this request.
        await condition(() => this.evaluatedSeq >= mine || st.state === 'waiting-approval' || FINAL.includes(st.state));
        return st;
      },
      { validator: this.validator('retry'), description: HANDLER_DESCRIPTIONS.retryUpdate },
    );
    this.installSignalHandlers();
  }

  /** Signals typed into the Temporal UI or CLI: retry needs a token; approve and abort are always refused (and audited). */
  private installSignalHandlers(): void {
    const st = this.st;
    setHandler(
      promotionRetrySignal,
      async (a) => {
        if (patched(SIGNED_ACTIONS) && !(await this.verifyAction('retry', 'signal', a)).ok) return;
        this.retrySeq++;
      },
      { description: HANDLER_DESCRIPTIONS.retrySignal },
    );
    setHandler(
      promotionApproveSignal,
      async (a) => {
        if (patched(SIGNED_ACTIONS)) {
          await this.verifyAction('approve', 'signal', a); // always refused (and audited): approval is an update
          return;
        }
        if (!a?.by) return;
        if (!st.approvals.some((x) => x.by === a.by))
          st.approvals.push({ by: a.by, at: new Date().toISOString(), ...(a.comment ? { comment: a.comment } : {}) });
      },
      { description: HANDLER_DESCRIPTIONS.approveSignal },
    );
    setHandler(
      promotionAbortSignal,
      async (a) => {
        if (patched(SIGNED_ACTIONS)) {
          await this.verifyAction('abort', 'signal', a); // always refused (and audited): abort is an update
          return;
        }
        this.aborted ??= { by: a?.by ?? 'unknown', reason: a?.reason };
      },
      { description: HANDLER_DESCRIPTIONS.abortSignal },
    );
  }

  private verifyAction(op: ActionOp, channel: 'update' | 'signal', a: unknown): Promise<ActionVerdict> {
    const st = this.st;
    const p = this.actionChain.then(() =>
      acts.promotionVerifyAction({
        op,
        channel,
        token: field(a, 'token'),
        claimedBy: field(a, 'by'),
        note: noteOf(a),
        tenant: this.input.tenant,
        promotionId: st.promotionId,
        workflowId: st.workflowId,
        artifactDigest: this.input.artifactDigest,
        requestedBy: this.input.requestedBy,
        state: st.state,
        approvers: st.approvals.map((x) => x.by),
      }),
    );
    this.actionChain = p.catch(() => undefined);
    return p;
  }

  /** Shape and state only (no I/O in a validator): a refusal here never enters history. */
  private validator(op: ActionOp): (a: ActionPayload) => void {
    return (a) => {
      const st = this.st;
      if (a === null || typeof a !== 'object' || Array.isArray(a)) throw refusal('BAD_INPUT', `${op} needs an object {token, by}`, false);
      if (FINAL.includes(st.state)) throw refusal('CONFLICT', `promotion ${st.promotionId} is already ${st.state}`, false);
      if (op !== 'approve') return;
      if (st.state !== 'waiting-approval') throw refusal('CONFLICT', `promotion ${st.workflowId} is ${st.state}, not waiting for approval`, false);
      if (a.by === this.input.requestedBy) throw refusal('FORBIDDEN', `${a.by} requested promotion ${st.workflowId} and cannot approve it`, false);
      if (st.approvals.some((x) => x.by === a.by)) throw refusal('CONFLICT', `${a.by} has already approved promotion ${st.workflowId}`, false);
    };
  }

  private async accept(op: ActionOp, channel: 'update' | 'signal', a: unknown): Promise<string> {
    const v = await this.verifyAction(op, channel, a);
    if (!v.ok) throw refusal(v.code, v.reason, true);
    return v.by;
  }
}

/** A field of an action payload as sent (anyone with Temporal access can send any JSON). */
function field(a: unknown, key: string): unknown {
  return a !== null && typeof a === 'object' ? (a as Record<string, unknown>)[key] : undefined;
}
function noteOf(a: unknown): string | undefined {
  const n = field(a, 'comment') ?? field(a, 'reason');
  return typeof n === 'string' && n ? n.slice(0, 1000) : undefined;
}
/** An update refusal; its type is the StellaCode the API answers with, `audited` whether the activity recorded it. */
function refusal(code: string, message: string, audited: boolean): ApplicationFailure {
  return ApplicationFailure.create({ message, type: code, nonRetryable: true, details: [{ audited }] });
}

/** generate missing: runs scanThenAttest as a child and waits for it. */
async function generateMissing(input: PromotionInput, st: PromotionStatus, blocking: GateResult[], deadlineMs: number): Promise<void> {
  st.reason = `generating missing evidence: ${blocking.map((g) => g.missing?.kind ?? g.name).join(',')}`;
  const onlySbom = blocking.every((g) => g.missing?.kind === 'sbom');
  const stale = blocking.some((g) => g.missing?.command.includes('--force'));
  try {
    await executeChild(scanThenAttest, {
      workflowId: scanWorkflowId(input.tenant, input.artifactDigest),
      args: [
        {
          tenant: input.tenant,
          artifactDigest: input.artifactDigest,
          ...(st.imageRef ? { imageRef: st.imageRef } : {}),
          sbomOnly: onlySbom,
          force: stale,
          requestedBy: input.requestedBy,
          trigger: 'promote',
        },
      ],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      // The scan is useful on its own: it finishes even if this promotion is aborted.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowExecutionTimeout: Math.max(60_000, deadlineMs - Date.now()),
    });
    st.reason = 'evidence generated; re-evaluating';
  } catch (e) {
    const name = (e as Error).name;
    if (name === 'WorkflowExecutionAlreadyStartedError') st.reason = 'a scan of this artifact is already running; re-checking shortly';
    else st.reason = `evidence generation failed: ${(e as Error).message}`;
    log.warn('scanThenAttest did not produce evidence', { reason: st.reason });
  }
}

/** An empty workflow: the baseline the promotion benchmark compares against. */
export async function promotionBenchNoop(): Promise<void> {}

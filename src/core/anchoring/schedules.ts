/** The anchoring feature's Temporal Schedule (SP-003). */
import { SCHEDULE_IDS } from '../../temporal/names';
import type { ScheduleSource } from '../../temporal/schedules';

export const ANCHOR_SCHEDULE_ID = SCHEDULE_IDS.merkleAnchor;

// SP-003: anchor every cfg.schedules.anchorInterval (default 6h); overlap SKIP and a one-period
// catch-up window come from ensureSchedules, so downtime yields one catch-up run.
// The workflow type is the name of workflows/anchoring.ts#anchorEvidence (core never imports workflows).
export const anchoringSchedules: ScheduleSource = (cfg) => [
  {
    id: ANCHOR_SCHEDULE_ID,
    description: 'SP-003 Merkle anchoring of the evidence log (signed, linked anchor; then verify --latest)',
    workflowType: 'anchorEvidence',
    args: [{ reason: 'scheduled', verify: true }],
    every: cfg.schedules.anchorInterval,
  },
];

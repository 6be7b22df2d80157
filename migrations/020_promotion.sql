-- Promotion with evidence gates (issue 5). Every table carries tenant_id.

-- Versioned promotion policy per target environment ('*' = tenant-wide fallback).
-- A new version is written only when the validated document changes (checksum).
CREATE TABLE promotion_policies (
  tenant_id text NOT NULL DEFAULT 'default',
  env text NOT NULL,
  version int NOT NULL,
  document jsonb NOT NULL,
  source text NOT NULL,
  checksum text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, env, version)
);

-- One row per promotion run (id = Temporal run id), inserted when the workflow starts and
-- updated on every state change; state mirrors the StellaPromotionState search attribute.
CREATE TABLE promotions (
  tenant_id text NOT NULL DEFAULT 'default',
  id text NOT NULL,
  workflow_id text NOT NULL,
  artifact_digest text NOT NULL,
  from_env text NOT NULL,
  to_env text NOT NULL,
  state text NOT NULL CHECK (state IN ('evaluating','waiting-evidence','waiting-approval','promoted','failed','aborted')),
  requested_by text NOT NULL,
  image_ref text,
  policy_env text,
  policy_version int,
  attempts int NOT NULL DEFAULT 0,
  deadline timestamptz,
  reason text,
  gate_snapshot jsonb NOT NULL DEFAULT '[]'::jsonb,
  approvals jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX promotions_state ON promotions (tenant_id, state, updated_at);
CREATE INDEX promotions_workflow ON promotions (tenant_id, workflow_id, created_at);
CREATE INDEX promotions_artifact ON promotions (tenant_id, artifact_digest);

-- Every gate evaluation, per attempt (re-evaluations after retry or generation are new attempts).
CREATE TABLE promotion_gate_results (
  tenant_id text NOT NULL DEFAULT 'default',
  promotion_id text NOT NULL,
  attempt int NOT NULL,
  gate text NOT NULL,
  required boolean NOT NULL,
  passed boolean NOT NULL,
  detail text NOT NULL,
  evidence_id text,
  missing jsonb,
  evaluated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, promotion_id, attempt, gate)
);

/**
 * HTTP contract of `stella feeds sync`, per-ecosystem feed state, and `stella scan explain`.
 * Response objects are loose (a field added on the server never disappears on the way out);
 * querystrings are loose so `?tenant=` passes.
 */
import { z } from 'zod';
import { FeedImported } from './scan';

export const EcosystemSync = z.looseObject({
  ecosystem: z.string(),
  records: z.number().int(),
  digest: z.string(),
  changed: z.boolean(),
  importedAt: z.string(),
  syncedAt: z.string(),
});
export const FeedSynced = z.looseObject({ feed: FeedImported, ecosystems: z.array(EcosystemSync), kept: z.number().int() });
export const FeedEcosystems = z.looseObject({
  items: z.array(EcosystemSync.extend({ feedVersion: z.number().int(), source: z.string().nullable(), ageSeconds: z.number() })),
});

export const ScanExplainQuery = z.looseObject({
  artifact: z.string().min(1).max(200),
  finding: z.string().min(1).max(2048),
  package: z.string().min(1).max(2048).optional(),
  env: z.string().min(1).max(63).optional(),
});

const Considered = z.object({
  id: z.string(),
  kind: z.string(),
  provenance: z.string(),
  signer: z.string().nullable(),
  accepted: z.boolean(),
  rule: z.string().optional(),
  problem: z.string().optional(),
  stellaKey: z.boolean().optional(),
});
const Range = z.looseObject({
  type: z.string(),
  events: z.array(
    z.looseObject({ introduced: z.string().optional(), fixed: z.string().optional(), last_affected: z.string().optional(), limit: z.string().optional() }),
  ),
  contains: z.boolean().optional(),
  fixed: z.string().optional(),
});
export const FindingExplanation = z.looseObject({
  findingId: z.string(),
  artifact: z.string(),
  reportId: z.string(),
  scannedAt: z.string(),
  package: z.looseObject({ ecosystem: z.string(), name: z.string(), version: z.string(), purl: z.string() }),
  installedVersion: z.string(),
  fixedVersion: z.string().nullable(),
  severity: z.string(),
  score: z.number().nullable(),
  advisory: z.looseObject({ id: z.string(), aliases: z.array(z.string()), summary: z.string(), ecosystem: z.string(), name: z.string() }),
  feed: z.looseObject({ digest: z.string(), count: z.number() }).nullable(),
  match: z
    .looseObject({
      version: z.string(),
      scheme: z.string(),
      ranges: z.array(Range),
      versions: z.looseObject({ listed: z.number(), contains: z.boolean() }),
    })
    .nullable(),
  vex: z.looseObject({
    policy: z.looseObject({ env: z.string(), source: z.string(), version: z.number().nullable() }),
    documents: z.array(Considered),
    statements: z.array(
      z.looseObject({
        evidenceId: z.string().nullable(),
        signer: z.string().nullable(),
        status: z.string(),
        justification: z.string().optional(),
        impactStatement: z.string().optional(),
        actionStatement: z.string().optional(),
        timestamp: z.string().optional(),
        suppresses: z.boolean(),
        effect: z.string(),
      }),
    ),
    suppressed: z.boolean(),
  }),
});
export const ScanExplanation = z.looseObject({ items: z.array(FindingExplanation) });

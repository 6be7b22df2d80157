import { imageRefFor } from '../../scan/catalogue';
import type { AppContext } from '../../context';
import { validateDigest } from '../index';
import { auditTrailOf } from '../../audit';
import { SLSA_PROVENANCE_V1, CYCLONEDX_BOM, VULNS_V02 } from '../../../crypto/intoto';

/** How far `provenance show` walks up or down the graph (cycles are cut by the path check). */
const MAX_DEPTH = 32;

export interface GraphNode {
  id: string;
  relation: string;
  depth: number;
  kind: string | null;
  state: string | null;
  via: string;
}

/** INC-001: where an item came from (producer, ancestors), what derives from it, its log leaf and audit trail. */
export async function provenanceShow(ctx: AppContext, tenant: string, id: string) {
  validateDigest(id, 'evidence id');
  const item = await ctx.evidence.get(tenant, id);
  const walk = async (dir: 'up' | 'down') => {
    const [from, to] = dir === 'up' ? ['child_id', 'parent_id'] : ['parent_id', 'child_id'];
    const r = await ctx.db.query(
      `WITH RECURSIVE g(node, via, relation, depth, path) AS (
         SELECT e.${to}, e.${from}, e.relation, 1, ARRAY[e.${from}, e.${to}] FROM evidence_edges e WHERE e.tenant_id=$1 AND e.${from}=$2
         UNION ALL
         SELECT e.${to}, e.${from}, e.relation, g.depth + 1, g.path || e.${to} FROM evidence_edges e JOIN g ON e.tenant_id=$1 AND e.${from}=g.node
         WHERE g.depth < $3 AND NOT e.${to} = ANY(g.path))
       SELECT g.node, g.via, g.relation, g.depth, i.kind, i.state FROM g LEFT JOIN evidence_items i ON i.tenant_id=$1 AND i.id=g.node ORDER BY g.depth, g.node`,
      [tenant, id, MAX_DEPTH],
    );
    return r.rows.map((x): GraphNode => ({ id: x.node, via: x.via, relation: x.relation, depth: x.depth, kind: x.kind ?? null, state: x.state ?? null }));
  };
  const [ancestors, descendants, log, auditRows, verifyRows] = await Promise.all([
    walk('up'),
    walk('down'),
    ctx.db.query('SELECT seq, encode(leaf_hash, $3) AS leaf_hash, appended_at FROM evidence_log WHERE tenant_id=$1 AND item_id=$2', [tenant, id, 'hex']),
    auditTrailOf(ctx.db, tenant, id),
    ctx.db.query(
      `SELECT r.run_id, r.result, r.detail, r.checked_at FROM verify_results r JOIN verify_runs v ON v.id = r.run_id
       WHERE r.item_id=$2 AND (v.tenant_id=$1 OR v.tenant_id='*') ORDER BY r.checked_at DESC LIMIT 10`,
      [tenant, id],
    ),
  ]);
  return {
    id,
    kind: item.kind,
    state: item.state,
    stateReason: item.stateReason,
    createdAt: item.createdAt,
    producer: item.producer,
    subjects: item.subjects,
    parents: item.parents,
    children: item.children,
    // Ancestors whose rows are absent are dangling links (parent never ingested or purged).
    ancestors,
    descendants,
    log: log.rowCount
      ? { seq: Number(log.rows[0].seq), leafHash: log.rows[0].leaf_hash as string, appendedAt: new Date(log.rows[0].appended_at).toISOString() }
      : null,
    audit: auditRows.map((a) => ({ at: new Date(a.at).toISOString(), actor: a.actor, action: a.action, reason: a.reason, details: a.details })),
    verifyHistory: verifyRows.rows.map((v) => ({ runId: v.run_id, result: v.result, detail: v.detail, checkedAt: new Date(v.checked_at).toISOString() })),
  };
}

/** Nodes the release gates expect for an artifact; `match` says which items satisfy a node. */
interface Requirement {
  key: string;
  label: string;
  match: (i: ChainItem) => boolean;
  remedy: (artifact: string, imageRef: string) => string;
  parentKey?: string;
}

export interface ChainItem {
  id: string;
  kind: string;
  predicateType: string | null;
  mediaType: string;
  state: string;
  createdAt: string;
  parents: { id: string; relation: string }[];
}

const pt = (i: ChainItem, ...prefixes: string[]) => !!i.predicateType && prefixes.some((p) => i.predicateType!.startsWith(p));

export const CHAIN_REQUIREMENTS: Requirement[] = [
  { key: 'sbom', label: 'SBOM', match: (i) => i.kind === 'sbom', remedy: (_a, img) => `stella scan image --image ${img} --sbom-only` },
  {
    key: 'scan-report',
    label: 'Scan report',
    parentKey: 'sbom',
    match: (i) => i.kind === 'scan-report',
    remedy: (_a, img) => `stella scan image --image ${img} --force`,
  },
  {
    key: 'attestation:slsa-provenance',
    label: 'SLSA provenance attestation',
    match: (i) => i.kind === 'attestation' && pt(i, SLSA_PROVENANCE_V1, 'https://slsa.dev/provenance/'),
    remedy: (a) => `stella attest create --subject ${a} --type slsa-provenance`,
  },
  {
    key: 'attestation:cyclonedx-sbom',
    label: 'CycloneDX SBOM attestation',
    parentKey: 'sbom',
    match: (i) => i.kind === 'attestation' && pt(i, CYCLONEDX_BOM),
    remedy: (a) => `stella attest create --subject ${a} --type sbom`,
  },
  {
    key: 'attestation:vuln-scan',
    label: 'Vulnerability scan attestation',
    parentKey: 'scan-report',
    match: (i) => i.kind === 'attestation' && pt(i, VULNS_V02, 'https://in-toto.io/attestation/vulns/'),
    remedy: (a) => `stella attest create --subject ${a} --type vuln`,
  },
];

export interface ChainNode {
  key: string;
  label: string;
  status: 'present' | 'missing' | 'unusable';
  items: { id: string; state: string; predicateType: string | null; createdAt: string; linkedTo: string[] }[];
  /** The node this one should derive from (e.g. scan report → SBOM) and whether an edge links them. */
  expectedParent: string | null;
  linked: boolean | null;
  remedy: string | null;
}

/**
 * The evidence graph for an artifact (runbook 000, "evidence chain incomplete"): SBOM → scan
 * report → attestations by predicate type, with missing nodes and how to produce them. A node
 * whose only items are corrupted/quarantined counts as unusable (not complete); a missing
 * edge between present nodes is shown but does not make the chain incomplete.
 */
export async function evidenceChain(ctx: AppContext, tenant: string, artifact: string) {
  validateDigest(artifact, 'artifact digest');
  const all: ChainItem[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.evidence.list({ tenant, artifact, limit: 1000, cursor });
    all.push(
      ...page.items.map((i) => ({
        id: i.id,
        kind: i.kind,
        predicateType: i.predicateType,
        mediaType: i.mediaType,
        state: i.state,
        createdAt: i.createdAt,
        parents: i.parents,
      })),
    );
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  // Remedies name the image as the operator registered it (stella image register), when known.
  const imageRef = (await imageRefFor(ctx, tenant, artifact)) ?? '<image path or name>';
  const matched = new Map<string, ChainItem[]>();
  const used = new Set<string>();
  for (const r of CHAIN_REQUIREMENTS) {
    const items = all.filter(r.match);
    matched.set(r.key, items);
    for (const i of items) used.add(i.id);
  }
  const nodes: ChainNode[] = CHAIN_REQUIREMENTS.map((r) => {
    const items = matched.get(r.key)!;
    const usable = items.filter((i) => i.state === 'present');
    const parentIds = new Set((r.parentKey ? matched.get(r.parentKey)! : []).map((p) => p.id));
    const status: ChainNode['status'] = usable.length ? 'present' : items.length ? 'unusable' : 'missing';
    const linked = r.parentKey && usable.length && parentIds.size ? usable.some((i) => i.parents.some((p) => parentIds.has(p.id))) : null;
    return {
      key: r.key,
      label: r.label,
      status,
      items: items.map((i) => ({
        id: i.id,
        state: i.state,
        predicateType: i.predicateType,
        createdAt: i.createdAt,
        linkedTo: i.parents.filter((p) => parentIds.has(p.id)).map((p) => p.id),
      })),
      expectedParent: r.parentKey ?? null,
      linked,
      remedy: status === 'present' ? null : r.remedy(artifact, imageRef),
    };
  });
  const other = all
    .filter((i) => !used.has(i.id))
    .map((i) => ({ id: i.id, kind: i.kind, predicateType: i.predicateType, state: i.state, createdAt: i.createdAt }));
  return {
    artifact,
    complete: nodes.every((n) => n.status === 'present'),
    missing: nodes.filter((n) => n.status !== 'present').map((n) => n.key),
    nodes,
    other,
    itemCount: all.length,
  };
}

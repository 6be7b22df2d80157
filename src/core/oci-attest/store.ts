/** The oci_publications table: what stella pushed to which repository (only this feature runs SQL on it). */
import type { Db } from '../../db/pool';
import type { PublishResult } from './publish';

export type Publication = {
  artifact: string;
  repository: string;
  method: string;
  evidenceId: string;
  artifactType: string;
  manifestDigest: string;
  tag: string | null;
  actor: string;
  pushedAt: string;
};

export async function recordPublications(db: Db, tenant: string, actor: string, r: PublishResult): Promise<void> {
  for (const i of r.items) {
    await db.query(
      `INSERT INTO oci_publications (tenant_id, artifact_digest, repository, method, evidence_id, artifact_type, manifest_digest, tag, actor)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING`,
      [tenant, r.artifact, r.repository, r.method, i.evidenceId, i.artifactType, i.manifestDigest, i.tag, actor],
    );
  }
}

interface Row {
  artifact_digest: string;
  repository: string;
  method: string;
  evidence_id: string;
  artifact_type: string;
  manifest_digest: string;
  tag: string | null;
  actor: string;
  pushed_at: Date;
}

export async function listPublications(db: Db, tenant: string, artifact: string): Promise<Publication[]> {
  const r = await db.query<Row>('SELECT * FROM oci_publications WHERE tenant_id=$1 AND artifact_digest=$2 ORDER BY pushed_at DESC, id DESC LIMIT 1000', [
    tenant,
    artifact,
  ]);
  return r.rows.map((x) => ({
    artifact: x.artifact_digest,
    repository: x.repository,
    method: x.method,
    evidenceId: x.evidence_id,
    artifactType: x.artifact_type,
    manifestDigest: x.manifest_digest,
    tag: x.tag,
    actor: x.actor,
    pushedAt: new Date(x.pushed_at).toISOString(),
  }));
}

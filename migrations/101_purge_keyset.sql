-- Issue 15: purge eligibility by keyset over expiry. A tenant's live items in (created_at, id)
-- order: a purge batch reads only the items after its run's cursor that are old enough to be due,
-- so every batch costs the same whatever the tenant's size.
CREATE INDEX evidence_items_live_by_age ON evidence_items (tenant_id, created_at, id) WHERE state IN ('present', 'corrupted');
-- Where a purge run's expiry walk stands (`<created microseconds> <id>` of the last item decided),
-- moved in the same transaction as the batch's tombstones.
ALTER TABLE retention_runs ADD COLUMN purge_cursor text;

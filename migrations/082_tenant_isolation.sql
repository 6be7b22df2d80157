-- Tenant isolation (issue 13 part 4): a bulk ingest records itself in locker_ops (with its
-- tenant) when it is started, so its status resolves within the caller's tenant.
ALTER TABLE locker_ops DROP CONSTRAINT IF EXISTS locker_ops_op_check;
ALTER TABLE locker_ops ADD CONSTRAINT locker_ops_op_check
  CHECK (op IN ('index.refresh','index.rebuild','index.optimize','retry-store','ingest'));

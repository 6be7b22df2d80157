#!/bin/sh
# One-shot: create Temporal's two databases in PostgreSQL and bring their schemas up to the
# version shipped in this admin-tools image (the steps temporalio/auto-setup used to run).
# Safe to re-run: an existing database is kept (a failed `create` is reported and the next
# step fails loudly if the database is really missing), `setup-schema -v 0.0` leaves existing
# tables alone and `update-schema` applies only the versions not yet applied. docker-compose.yml runs
# it from temporalio/admin-tools before temporalio/server starts.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA=/etc/temporal/schema/postgresql/v12
sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"; }
for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db=${pair%%:*}
  dir=${pair#*:}
  echo "temporal-schema: $db"
  sql --db "$db" create || echo "temporal-schema: create $db failed (already there?); continuing"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "temporal-schema: done"

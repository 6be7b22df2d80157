-- Runs once, when the pgdata volume is first initialised. The temporal-schema one-shot
-- (ops/compose/temporal-schema.sh) creates Temporal's databases as this role; make sure it can.
ALTER ROLE stella CREATEDB;

#!/bin/sh
# Create or upgrade Temporal's two PostgreSQL databases (temporal, temporal_visibility) with the
# admin-tools image's temporal-sql-tool. Idempotent: `create` ignores an existing database,
# `setup-schema -v 0.0` skips a database already past 0.0, and `update-schema` applies only the
# versions a database lacks, so this runs on every `docker compose up` and after an image upgrade.
# The password comes from SQL_PASSWORD, so it never appears on a command line.
set -eu
: "${SQL_PASSWORD:?set SQL_PASSWORD}"
PLUGIN=postgres12
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12
for db in temporal:temporal temporal_visibility:visibility; do
  name=${db%%:*}
  schema=${db##*:}
  echo "schema of ${name}"
  temporal-sql-tool --plugin "$PLUGIN" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" --db "$name" create
  temporal-sql-tool --plugin "$PLUGIN" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" --db "$name" setup-schema -v 0.0
  temporal-sql-tool --plugin "$PLUGIN" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" --db "$name" \
    update-schema -d "$SCHEMA_DIR/$schema/versioned"
done
echo "Temporal schemas are up to date"

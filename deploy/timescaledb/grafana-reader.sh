#!/bin/sh
# Creates or updates the read-only role Grafana connects as (GRAFANA_DB_USER, default grafana_reader, with
# GRAFANA_DB_PASSWORD), member of pg_read_all_data so it can read every table and view the migrations add later.
# Idempotent: docker-compose.yml runs it on every `up`, so a changed password takes effect. Connection from the
# libpq variables PGHOST, PGUSER, PGDATABASE, PGPASSWORD.
set -eu
: "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 -q -v role="${GRAFANA_DB_USER:-grafana_reader}" -v pw="$GRAFANA_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'pw') \gexec
SELECT format('GRANT pg_read_all_data TO %I', :'role') \gexec
SQL
echo "grafana role ready"

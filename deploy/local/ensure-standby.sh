#!/usr/bin/env bash
# Makes sure a hot standby of the local PostgreSQL answers on 127.0.0.1:5433, for the
# read-replica tests (LEDGER_READ_DATABASE_URLS; tests/integration/test_replica_*.py,
# tests/e2e/test_replicas.py). ensure-services.sh --with-standby runs it; `make test`
# passes that flag, `make run` does not. Prints what it did.
#
# The standby is a second cluster of the same PostgreSQL, made with
# `pg_basebackup -R` (which writes primary_conninfo and standby.signal) over a physical
# replication slot (`ledger_standby`: the primary keeps the WAL the standby has not
# received, so a standby stopped by a test catches up when it starts again). It runs as
# the `postgres` OS user, with hot_standby_feedback on (the primary's vacuum keeps the
# rows a long read on the standby still sees, so replay never cancels it for them).
# Idempotent: a standby that answers is left alone (its replay resumed if a test left
# it paused); a data directory that holds a standby is started; anything else there is
# removed and made again. Runs as root (CI, the development machines) or as postgres.
set -euo pipefail

primary_host=${LEDGER_PG_HOST:-127.0.0.1}
primary_port=${LEDGER_PG_PORT:-5432}
standby_port=${LEDGER_STANDBY_PORT:-5433}
slot=ledger_standby

say() { echo "ensure-standby: $*"; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  elif [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    say "run as root or as postgres to make the standby (it runs as the postgres user)" >&2
    exit 1
  fi
}

primary() { psql -h "$primary_host" -p "$primary_port" -U postgres -d postgres -Atqc "$1"; }
standby() { psql -h 127.0.0.1 -p "$standby_port" -U postgres -d postgres -Atqc "$1"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

major=$(( $(primary "SHOW server_version_num") / 10000 ))
bin=/usr/lib/postgresql/$major/bin
data=${LEDGER_STANDBY_DIR:-/var/lib/postgresql/$major/ledger-standby}
log=$data/standby.log  # inside the data directory: the postgres user owns it

if port_open "$standby_port"; then
  if [ "$(standby 'SELECT pg_is_in_recovery()')" != t ]; then
    say "127.0.0.1:$standby_port answers but is not a standby; stop it or set LEDGER_STANDBY_PORT" >&2
    exit 1
  fi
  if [ "$(standby 'SELECT pg_is_wal_replay_paused()')" = t ]; then
    standby "SELECT pg_wal_replay_resume()" >/dev/null
    say "standby on 127.0.0.1:$standby_port was paused; replay resumed"
  fi
  say "standby answers on 127.0.0.1:$standby_port"
  exit 0
fi

if [ "$(primary 'SHOW wal_level')" = minimal ]; then
  say "the primary's wal_level is minimal: set it to replica and restart it" >&2
  exit 1
fi

# Replication connections from 127.0.0.1, trusted like the primary's other local ones.
hba=$(primary "SHOW hba_file")
if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
  printf '%s\n' "host replication all 127.0.0.1/32 trust" >>"$hba"
  primary "SELECT pg_reload_conf()" >/dev/null
  say "allowed replication from 127.0.0.1 in $hba (reloaded)"
fi

start() {
  as_postgres "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
}

if [ -f "$data/PG_VERSION" ] && [ -f "$data/standby.signal" ] && start; then
  say "started the standby in $data on 127.0.0.1:$standby_port (log: $log)"
  exit 0
fi

say "making a standby in $data with pg_basebackup -R"
as_postgres "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
rm -rf "$data"
install -d -o postgres -g postgres -m 700 "$data"
primary "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null
as_postgres "$bin/pg_basebackup" -h "$primary_host" -p "$primary_port" -U postgres \
  -D "$data" -R -X stream -C -S "$slot" -c fast

# Debian keeps a cluster's configuration in /etc, so the copy has none of its own. The
# settings a standby must hold at least as high as its primary's are copied from it.
{
  echo "# Written by deploy/local/ensure-standby.sh"
  echo "port = $standby_port"
  echo "listen_addresses = '127.0.0.1'"
  echo "unix_socket_directories = '/var/run/postgresql'"
  echo "hot_standby = on"
  echo "hot_standby_feedback = on"
  for name in max_connections max_worker_processes max_wal_senders \
    max_prepared_transactions max_locks_per_transaction shared_buffers; do
    echo "$name = '$(primary "SHOW $name")'"
  done
  echo "timezone = 'Etc/UTC'"
  echo "log_timezone = 'Etc/UTC'"
} >"$data/postgresql.conf"
printf '%s\n' "local all all trust" "host all all 127.0.0.1/32 trust" \
  "host replication all 127.0.0.1/32 trust" >"$data/pg_hba.conf"
: >"$data/pg_ident.conf"
chown postgres:postgres "$data/postgresql.conf" "$data/pg_hba.conf" "$data/pg_ident.conf" 2>/dev/null || true

start || { say "the standby did not start; its log:" >&2; tail -n 30 "$log" >&2; exit 1; }
say "standby made and started on 127.0.0.1:$standby_port (data: $data, log: $log)"

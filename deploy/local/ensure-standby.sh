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
# The slot is bounded: the primary keeps at most max_slot_wal_keep_size (1GB, set here
# if unbounded) for a standby that is down; past that the slot is lost and the
# standby is made again. (hot_standby_feedback's xmin on the slot is dropped with it.)
# Idempotent: a standby that answers and streams over the slot is left alone (its
# replay resumed and its apply delay reset if a test left them); a data directory
# that holds a standby is started; anything else there, a lost slot, or a standby
# that does not stream within STREAM_WAIT_S, is removed and made again. Runs as root
# (CI, the development machines) or as postgres.
set -euo pipefail

primary_host=${LEDGER_PG_HOST:-127.0.0.1}
primary_port=${LEDGER_PG_PORT:-5432}
standby_port=${LEDGER_STANDBY_PORT:-5433}
slot=ledger_standby
slot_wal_max=1GB
STREAM_WAIT_S=${LEDGER_STANDBY_STREAM_WAIT_S:-15}

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

# A slot keeps WAL for as long as its standby is down unless this bounds it (a
# reload applies it: the setting is sighup).
if [ "$(primary 'SHOW max_slot_wal_keep_size')" = -1 ]; then
  primary "ALTER SYSTEM SET max_slot_wal_keep_size = '$slot_wal_max'" >/dev/null
  primary "SELECT pg_reload_conf()" >/dev/null
  say "bounded the WAL the primary keeps for a slot: max_slot_wal_keep_size = $slot_wal_max (reloaded)"
fi
slot_status() { primary "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$slot'"; }

# Streaming: the standby's WAL receiver streams, and the primary's slot is in use.
streaming() {
  [ "$(standby 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)" = streaming ] &&
    [ "$(primary "SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'")" = t ]
}
wait_streaming() {
  local tries=$((STREAM_WAIT_S * 5))
  while [ "$tries" -gt 0 ]; do
    streaming && return 0
    sleep 0.2
    tries=$((tries - 1))
  done
  return 1
}

remake=
if port_open "$standby_port"; then
  if [ "$(standby 'SELECT pg_is_in_recovery()')" != t ]; then
    say "127.0.0.1:$standby_port answers but is not a standby; stop it or set LEDGER_STANDBY_PORT" >&2
    exit 1
  fi
  if [ "$(standby 'SELECT pg_is_wal_replay_paused()')" = t ]; then
    standby "SELECT pg_wal_replay_resume()" >/dev/null
    say "standby on 127.0.0.1:$standby_port was paused; replay resumed"
  fi
  if [ "$(standby 'SHOW recovery_min_apply_delay')" != 0 ]; then
    standby "ALTER SYSTEM RESET recovery_min_apply_delay" >/dev/null
    standby "SELECT pg_reload_conf()" >/dev/null
    say "standby on 127.0.0.1:$standby_port applied commits late; recovery_min_apply_delay reset"
  fi
  if [ "$(slot_status)" = lost ]; then
    say "the slot $slot is lost (the standby was away past $slot_wal_max of WAL): making the standby again"
    remake=1
  elif wait_streaming; then
    say "standby answers on 127.0.0.1:$standby_port, streaming"
    exit 0
  else
    say "standby on 127.0.0.1:$standby_port does not stream over the slot $slot within ${STREAM_WAIT_S} s: making it again"
    remake=1
  fi
fi

if [ "$(primary 'SHOW wal_level')" = minimal ]; then
  say "the primary's wal_level is minimal: set it to replica and restart it" >&2
  exit 1
fi

# Replication connections from 127.0.0.1, trusted like the primary's other local ones:
# the first replication line that matches wins, so the trust line goes before the
# first one (a fresh Debian cluster has `host replication all 127.0.0.1/32
# scram-sha-256`), moved there if it was further down.
hba=$(primary "SHOW hba_file")
trust_line="host replication all 127.0.0.1/32 trust"
trust_re='^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust([[:space:]]|$)'
replication_re='^[[:space:]]*(local|host|hostssl|hostnossl|hostgssenc|hostnogssenc)[[:space:]]+replication[[:space:]]'
first=$(grep -E "$replication_re" "$hba" | head -n 1 || true)
if ! printf '%s\n' "$first" | grep -Eq "$trust_re"; then
  # The patterns through the environment: awk -v would take their backslashes.
  LINE=$trust_line TRUST=$trust_re REPLICATION=$replication_re awk '
    $0 ~ ENVIRON["TRUST"] { next }
    !done && $0 ~ ENVIRON["REPLICATION"] { print ENVIRON["LINE"]; done = 1 }
    { print }
    END { if (!done) print ENVIRON["LINE"] }
  ' "$hba" >"$hba.ledger-new"
  cat "$hba.ledger-new" >"$hba" # keeps the file's owner and mode
  rm -f "$hba.ledger-new"
  primary "SELECT pg_reload_conf()" >/dev/null
  say "allowed replication from 127.0.0.1 in $hba, before any other replication line (reloaded)"
fi

start() {
  as_postgres "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
}

if [ -z "$remake" ] && [ "$(slot_status)" = lost ]; then
  say "the slot $slot is lost (the standby was away past $slot_wal_max of WAL): making the standby again"
  remake=1
fi
if [ -z "$remake" ] && [ -f "$data/PG_VERSION" ] && [ -f "$data/standby.signal" ] && start; then
  if wait_streaming; then
    say "started the standby in $data on 127.0.0.1:$standby_port, streaming (log: $log)"
    exit 0
  fi
  say "the standby started in $data does not stream within ${STREAM_WAIT_S} s: making it again"
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
wait_streaming || { say "the standby made does not stream; its log:" >&2; tail -n 30 "$log" >&2; exit 1; }
say "standby made and started on 127.0.0.1:$standby_port, streaming (data: $data, log: $log)"

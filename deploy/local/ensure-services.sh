#!/usr/bin/env bash
# Starts the local PostgreSQL and RabbitMQ when they do not answer (the Debian packages'
# own start commands), then waits until both accept connections. Prints what it did.
# With --with-promtool (`make test` passes it), also makes sure promtool is installed:
# tests/deploy/test_monitoring.py checks the Prometheus alert rules with it.
# With --with-standby (`make test` passes it), also makes sure a hot standby of the
# local PostgreSQL answers on 127.0.0.1:5433 (deploy/local/ensure-standby.sh): the
# read-replica tests read from it.
set -euo pipefail

with_promtool=false
with_standby=false
for argument in "$@"; do
  case "$argument" in
    --with-promtool) with_promtool=true ;;
    --with-standby) with_standby=true ;;
    *) echo "ensure-services: unknown argument $argument" >&2; exit 2 ;;
  esac
done

pg_host=${LEDGER_PG_HOST:-127.0.0.1}
pg_port=${LEDGER_PG_PORT:-5432}
amqp_host=${LEDGER_AMQP_HOST:-127.0.0.1}
amqp_port=${LEDGER_AMQP_PORT:-5672}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # name host port seconds
  for _ in $(seq 1 "$4"); do port_open "$2" "$3" && return 0; sleep 1; done
  echo "ensure-services: $1 at $2:$3 did not answer after $4 s" >&2
  return 1
}

if ! port_open "$pg_host" "$pg_port"; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "ensure-services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  else
    echo "ensure-services: PostgreSQL is not answering at $pg_host:$pg_port and is not installed here." >&2
    echo "  Install it (apt-get install postgresql) or start it with deploy/compose.yaml." >&2
    exit 1
  fi
  wait_for PostgreSQL "$pg_host" "$pg_port" 60
fi

if ! port_open "$amqp_host" "$amqp_port"; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "ensure-services: starting RabbitMQ"
    rabbitmq-server -detached || true
  else
    echo "ensure-services: RabbitMQ is not answering at $amqp_host:$amqp_port and is not installed here." >&2
    echo "  Install it (apt-get install rabbitmq-server) or start it with deploy/compose.yaml." >&2
    exit 1
  fi
  wait_for RabbitMQ "$amqp_host" "$amqp_port" 90
fi

# Only promtool is wanted from Debian's prometheus package, not its server: where the
# package's scripts started one (systemd, or a SysV runlevel that links it; a
# container's policy-rc.d usually forbids it), stop it and keep it from starting at
# boot, so that nothing holds port 9090 or scrapes in the background.
stop_prometheus_server() {
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
}

install_promtool() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-services: promtool is missing; install Debian's prometheus package" \
      "(apt-get install --no-install-recommends prometheus) as root." >&2
    echo "  tests/deploy/test_monitoring.py fails without it." >&2
    return 0
  fi
  echo "ensure-services: installing promtool (Debian's prometheus package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends prometheus >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
  stop_prometheus_server
}

if [ "$with_promtool" = true ] && ! command -v promtool >/dev/null 2>&1; then
  install_promtool
fi

if [ "$with_standby" = true ]; then
  bash "$(dirname "$0")/ensure-standby.sh"
fi

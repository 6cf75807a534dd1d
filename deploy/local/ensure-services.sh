#!/usr/bin/env bash
# Starts the local PostgreSQL and RabbitMQ when they do not answer (the Debian packages'
# own start commands), then waits until both accept connections. Prints what it did.
set -euo pipefail

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

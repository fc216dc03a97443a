#!/usr/bin/env bash
# bench/transit-relay.sh - start transit as the relay under test for
# ../shared/bench/peerbench ("custom" target):
#
#   ../shared/bench/peerbench compare postfix custom --name transit --port 24027 \
#       --start "$PWD/bench/transit-relay.sh"
#
# peerbench sets PORT (listen on 127.0.0.1:$PORT), SINK_PORT (relay everything
# to 127.0.0.1:$SINK_PORT) and WORK_DIR (config and spool go there). transit
# runs in the foreground with a sync before every 250 (queue.sync = syncfs,
# the default; TRANSIT_SYNC=fsync for per-file fdatasync).
# TRANSITD overrides the binary (default: build/transitd next to this script).
# Message tracking is on (as by default), under $WORK_DIR/logs;
# TRANSIT_TRACKING=false turns it off (docs/performance.md compares both).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
transitd=${TRANSITD:-$here/build/transitd}
: "${PORT:?}" "${SINK_PORT:?}" "${WORK_DIR:?}"
conf=$WORK_DIR/transit.conf
cat > "$conf" <<CONF
server {
  fqdn = "relay.bench.test"
  spool = "$WORK_DIR/spool"
  max-connections = 5000
}
accepted-domain "bench.test" { type = "authoritative" }
mailboxes { maildir = "$WORK_DIR/mail/%d/%u" }
users { passwd-file = "$WORK_DIR/users" }
receive-connector "bench" {
  bindings = { "127.0.0.1:$PORT" }
  remote-ip-ranges = { "127.0.0.0/8" }
  permissions = { "relay" }
  tls = "none"
  max-connections-per-source = 5000
}
send-connector "sink" {
  address-spaces = { "*" }
  smart-hosts = { "[127.0.0.1]:$SINK_PORT" }
  tls = "none"
  max-connections-per-destination = ${TRANSIT_DEST_CONNS:-20}
}
queue { sync = "${TRANSIT_SYNC:-syncfs}" }
logs {
  path = "$WORK_DIR/logs"
  tracking { enabled = ${TRANSIT_TRACKING:-true} }
}
CONF
exec "$transitd" -c "$conf"

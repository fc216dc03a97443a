#!/usr/bin/env bash
# bench/queue_list.sh [N] - the queue viewer on a big queue (issue 8):
# builds a spool of N small queue files (default 1000000; bench/queue_gen.py),
# then times
#   1. transitctl queue list --by-next-hop   (reads the files; no daemon)
#   2. transitd's start on that queue (recovery), then transitctl status and
#      queue list --by-next-hop while it runs, and the SMTP banner latency
#      during the list (the event loop must not stall).
# Results go to stdout; record them in docs/performance.md ("Queue viewer").
# Needs about 4.2 KiB of disk (one block + inode) per message.
# QBENCH_DIR=DIR keeps the work directory (and reuses a spool already built
# there: generating a million files takes minutes).
# The daemon starts with every next hop suspended (spool/suspended = "*"),
# so it holds the whole queue without delivery storms while we measure.
# TRANSITD / TRANSITCTL override the binaries (default build/).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
transitd=${TRANSITD:-$here/build/transitd}
transitctl=${TRANSITCTL:-$here/build/transitctl}
n=${1:-1000000}
work=${QBENCH_DIR:-}
keep=yes
[ -n "$work" ] || { work=$(mktemp -d /tmp/transit-qbench.XXXXXX); keep=no; }
mkdir -p "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null || true
	[ "$keep" = yes ] || rm -rf "$work"
}
trap cleanup EXIT
cat > "$work/transit.conf" <<CONF
server { fqdn = "relay.bench.test" spool = "$work/spool" }
accepted-domain "bench.test" { type = "authoritative" }
mailboxes { maildir = "$work/mail/%d/%u" }
users { passwd-file = "$work/users" }
receive-connector "bench" {
  bindings = { "127.0.0.1:$port" }
  remote-ip-ranges = { "127.0.0.0/8" }
  permissions = { "anonymous" }
}
# nothing listens on the discard port: every delivery is deferred, and the
# retry interval keeps the queue still while we measure
send-connector "out" {
  address-spaces = { "*" }
  smart-hosts = { "[127.0.0.1]:9" }
  tls = "none"
}
queue { retry = { "1d" } expire = "5d" }
back-pressure { queue-medium = 5000000 queue-high = 6000000 disk-free-medium = "1G" disk-free-high = "500M" }
control { socket = "$work/control.sock" }
CONF
: > "$work/users"
if [ -d "$work/spool/queue" ]; then
	n=$(find "$work/spool/queue" -maxdepth 1 -type f | wc -l)
	echo "queue_list: reusing $n queue files in $work/spool/queue"
else
	echo "queue_list: writing $n queue files into $work/spool/queue"
	t0=$(date +%s.%N)
	python3 "$here/bench/queue_gen.py" "$work/spool" "$n"
	t1=$(date +%s.%N)
	printf 'generate: %.1f s\n' "$(echo "$t1 - $t0" | bc)"
fi
echo '*' > "$work/spool/suspended"
sync
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(date +%s.%N)
"$transitctl" -c "$work/transit.conf" queue list --by-next-hop > "$work/byhop.txt"
t1=$(date +%s.%N)
printf 'queue list --by-next-hop, daemon down, cold cache: %.2f s (%s next hops)\n' \
	"$(echo "$t1 - $t0" | bc)" "$(($(wc -l < "$work/byhop.txt") - 1))"
t0=$(date +%s.%N)
"$transitctl" -c "$work/transit.conf" queue list --by-next-hop > /dev/null
t1=$(date +%s.%N)
printf 'queue list --by-next-hop, daemon down, warm cache: %.2f s\n' "$(echo "$t1 - $t0" | bc)"

t0=$(date +%s.%N)
"$transitd" -c "$work/transit.conf" 2> "$work/transitd.log" &
pid=$!
until "$transitctl" -c "$work/transit.conf" status --json > "$work/status.json" 2>/dev/null; do
	sleep 0.2
done
t1=$(date +%s.%N)
printf 'transitd start to first status reply: %.1f s\n' "$(echo "$t1 - $t0" | bc)"
python3 - "$work/status.json" <<'PY'
import json, sys
print("status queue:", json.load(open(sys.argv[1]))["queue"])
PY
t0=$(date +%s.%N)
"$transitctl" -c "$work/transit.conf" status > /dev/null
t1=$(date +%s.%N)
printf 'transitctl status (daemon holds %s messages): %.3f s\n' "$n" "$(echo "$t1 - $t0" | bc)"
# banner latency while a list runs: the list never enters the daemon
"$transitctl" -c "$work/transit.conf" queue list --by-next-hop > /dev/null &
lister=$!
python3 - "$port" <<'PY'
import socket, sys, time
worst = 0.0
for _ in range(20):
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.recv(512)
    worst = max(worst, time.monotonic() - t)
    s.sendall(b"QUIT\r\n"); s.close()
    time.sleep(0.1)
print("SMTP banner latency during queue list, worst of 20: %.1f ms" % (worst * 1000))
PY
t0=$(date +%s.%N)
wait "$lister"
t1=$(date +%s.%N)
printf 'queue list --by-next-hop with transitd running (finished %.1f s after the probe)\n' \
	"$(echo "$t1 - $t0" | bc)"

#!/usr/bin/env bash
# bench/track_bench.sh [N] - message tracking at scale (issue 8; not a
# test): write N events (default 1,000,000) with bench/track_bench.c
# through the real tracking writer, then time `transitctl track` queries
# over them (the files are read directly: no daemon). Needs `make build`.
# Results go in docs/performance.md ("Message tracking").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
build=${BUILD:-$here/build}
work=$(mktemp -d /tmp/track-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
libs=$(pkg-config --libs jansson libevent libevent_pthreads libevent_openssl openssl libconfuse \
	libunbound zlib)
cc -O2 -pthread -I"$here/src" "$here/bench/track_bench.c" "$build/libtransit.a" $libs -lcrypt \
	-o "$work/track_bench"
"$work/track_bench" "$work/logs" "$n"
echo "files=$(ls "$work/logs/tracking" | wc -l) bytes=$(du -sb "$work/logs/tracking" | cut -f1)"
# wall and CPU (user+sys) seconds: the machine is shared, CPU is the steadier figure
q() {
	local out times
	out=$(mktemp "$work/out.XXXXXX")
	times=$( { TIMEFORMAT='%R %U %S'; time "$build/transitctl" track \
		--dir "$work/logs/tracking" --json "$@" >"$out"; } 2>&1)
	read -r real user sys <<<"$times"
	printf '%-56s %7s events  wall %6.2f s  cpu %6.2f s\n' "track $*" "$(wc -l <"$out")" \
		"$real" "$(echo "$user + $sys" | bc)"
	rm -f "$out"
}
m=$((n / 4 / 2))
q --recipient "r$m@example.test"
q --queue-id "Q$m"
q --message-id "<m$m@bench>"
q --sender "s7@senders.example" --event RECEIVE
q --event DEFER
q --since 1h --event DELIVER
q --until 2000-01-01

#!/bin/sh
# run.sh BUILD_DIR SECONDS - run every libFuzzer target built in
# BUILD_DIR/tests/fuzz (configure with CC=clang and -Dfuzz=true) for SECONDS
# each, starting from the seed corpus tests/fuzz/corpus/<target>/ and the
# dictionary tests/fuzz/<target>.dict when there is one.
#
# The corpus is copied to BUILD_DIR/fuzz-scratch/<target>/ so the repository
# is never modified; crash/leak/timeout inputs land in .../artifacts/ there.
# Prints one summary line per target; exits 1 if any target failed (crash,
# sanitizer report, timeout > 5 s, out of memory) or none was found.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
secs=$2
case $secs in '' | *[!0-9]*) echo "SECONDS must be a number" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
scratch="$build/fuzz-scratch"
failed=0
found=0

for exe in "$build"/tests/fuzz/fuzz_*; do
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	name=$(basename "$exe")
	found=$((found + 1))
	work="$scratch/$name"
	rm -rf "$work"
	mkdir -p "$work/corpus" "$work/artifacts"
	if [ -d "$here/corpus/$name" ]; then
		cp -R "$here/corpus/$name"/. "$work/corpus/"
	fi
	set -- -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/"
	if [ -f "$here/$name.dict" ]; then
		set -- "$@" -dict="$here/$name.dict"
	fi
	rc=0
	"$exe" "$@" "$work/corpus" >"$work/log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 | cut -d' ' -f2)
	ncorpus=$(ls "$work/corpus" | wc -l)
	if [ "$rc" -eq 0 ] && [ -z "$(ls "$work/artifacts")" ]; then
		echo "$name: ok runs=${runs:-?} cov=${cov:-?} corpus=$ncorpus time=${secs}s"
	else
		echo "$name: FAILED exit=$rc runs=${runs:-?} artifacts=$work/artifacts log=$work/log"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$work/log" | head -n 5 | sed 's/^/    /'
		failed=1
	fi
done

if [ "$found" -eq 0 ]; then
	echo "no fuzz targets in $build/tests/fuzz (configure with CC=clang -Dfuzz=true)" >&2
	exit 1
fi
exit $failed

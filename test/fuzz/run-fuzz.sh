#!/usr/bin/env bash
# test/fuzz/run-fuzz.sh — build the libFuzzer harness for each feed parser
# (AddressSanitizer + LeakSanitizer + UBSan) and run each for a bounded
# time, seeded with the recorded fixtures of ../shared/fixtures/feeds.
#   FUZZ_SECONDS   time per parser (default 60)
# Prints TAP: one test per parser; a crash or leak fails it and keeps the
# reproducer in artifacts/fuzz/.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

seconds=${FUZZ_SECONDS:-60}
work=$(mktemp -d /tmp/status_checker-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
fixtures="$SC_FIXTURES"
srcs="$SC_ROOT/src/feeds/feed_parse.c $SC_ROOT/src/feeds/feed_common.c $SC_ROOT/src/feeds/feed_jma.c $SC_ROOT/src/feeds/feed_jma_weather.c $SC_ROOT/src/feeds/feed_json.c $SC_ROOT/src/shindo/shindo_core.c"
artifacts="$SC_ROOT/artifacts/fuzz"
mkdir -p "$artifacts"

declare -A seeds=(
    [jma]="$fixtures/jma/V*.xml $fixtures/jma/official_samples/*.xml $fixtures/jma/weather/*.xml"
    [jma_atom]="$fixtures/jma/atom_*.xml"
    [p2pquake]="$fixtures/p2pquake/*.json $fixtures/p2pquake/epsp_converted_from_jmaxml/*.json"
    [usgs]="$fixtures/usgs/*.geojson"
)
echo "1..${#seeds[@]}"
n=1; fail=0
for source in jma jma_atom p2pquake usgs; do
    bin="$work/fuzz_$source"
    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -DFUZZ_SOURCE="\"$source\"" -I"$SC_ROOT/src" $(xml2-config --cflags) \
        -o "$bin" "$SC_ROOT/test/fuzz/fuzz_feed.c" $srcs $(xml2-config --libs) -ljansson
    corpus="$work/corpus_$source"; mkdir -p "$corpus"
    # seeds: the recordings (the corpus lives in a temporary directory)
    for f in ${seeds[$source]}; do cp "$f" "$corpus/"; done
    # JMA telegrams are up to 441 KB; USGS feeds larger: allow what they need
    if "$bin" "$corpus" -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=2048 \
            -timeout=10 -artifact_prefix="$artifacts/${source}-" -print_final_stats=1 \
            > "$work/log_$source" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log_$source")
        echo "ok $n - $source parser: ${runs:-?} inputs in ${seconds}s, no crash, leak or undefined behaviour"
    else
        echo "not ok $n - $source parser: see artifacts/fuzz/"
        tail -40 "$work/log_$source" | sed 's/^/# /'
        cp "$work/log_$source" "$artifacts/" || true
        fail=1
    fi
    n=$((n + 1))
done
exit $fail

#!/usr/bin/env bash
# test/call_directions.sh — which C files call which, and whether any two
# call each other (directly or round a longer loop).  Reads the objects a
# `make` left (nm: the functions each object needs that another one of the
# extension or the parser library defines); static functions never cross
# files, so this is every call between files.
#   bash test/call_directions.sh        after `make -s`
# Prints "file.c -> file.c" lines, then the loops; exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
objs=$(ls src/*/*.o | grep -v '^src/web/assets\.o$')
declare -A def
for o in $objs; do
    for s in $(nm --defined-only "$o" | awk '$2 == "T" {print $3}'); do def[$s]=$o; done
done
pairs=$(for o in $objs; do
    for s in $(nm -u "$o" | awk '{print $2}'); do
        d=${def[$s]:-}
        if [ -n "$d" ] && [ "$d" != "$o" ]; then echo "${o%.o}.c -> ${d%.o}.c"; fi
    done
done | sort -u)
echo "$pairs"
loops=$(echo "$pairs" | awk '{print $1, $3}' | tsort 2>&1 >/dev/null || true)
if [ -n "$loops" ]; then
    echo "calls go round in a loop:"
    echo "$loops"
    exit 1
fi
echo "no file calls back into a file that calls it"

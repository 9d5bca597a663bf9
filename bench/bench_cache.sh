#!/usr/bin/env bash
# bench/bench_cache.sh: cache benchmarks (hashing vs xxhsum -H2, stat-cache
# re-check, lookup/commit latency).  Usage: BUILD=build bench/bench_cache.sh [DIR] [MiB]
set -eu
BUILD=${BUILD:-build}
make -s "$BUILD/bench/bench_cache" BUILD="$BUILD" >/dev/null
exec "$BUILD/bench/bench_cache" "$@"

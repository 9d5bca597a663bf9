#!/usr/bin/env bash
# bench/bench_remote.sh: push and pull of a 1 GiB artifact over loopback to a
# real nginx (WebDAV PUT + basic auth, tests/remote_lib.sh), against the curl
# tool uploading and downloading the same file in the same run, and a no-op
# `flab build` in the pulling project.  Goal: flab >= 0.8x curl.
#   bash bench/bench_remote.sh            (SIZE_MB=1024 by default)
# Needs nginx; prints one line per measurement.
set -eu
cd "$(dirname "$0")/.."
REPO=$PWD
FLAB=${FLAB:-$REPO/build/flab}
. tests/remote_lib.sh
have_nginx || { echo "SKIP bench_remote: nginx not installed"; exit 0; }
SIZE_MB=${SIZE_MB:-1024}
W=$(mktemp -d "${TMPDIR:-/tmp}/flab-bench-remote.XXXXXX")
trap 'stop_nginx; rm -rf "$W"' EXIT
export FLAB_PROGRESS=plain FLAB_CACHE_FSYNC=${FLAB_CACHE_FSYNC:-0}
PW=bench-pw
NGINX_WORKERS=2 start_nginx "$W/nginx" flab "$PW" >/dev/null
export FLAB_REMOTE=$NGINX_URL/cache FLAB_REMOTE_USER=flab FLAB_REMOTE_PASSWORD=$PW
now() { date +%s.%N; }
rate() { python3 -c "import sys; print('%.0f' % ($SIZE_MB * 1.048576 / (float(sys.argv[2]) - float(sys.argv[1]))))" "$1" "$2"; }

mkdir -p "$W/A" "$W/B"
head -c $((SIZE_MB << 20)) /dev/urandom > "$W/A/big.bin"
cp "$W/A/big.bin" "$W/B/big.bin"
for d in A B; do
  printf '[big]\nrule = command\ninputs = big.bin\nrun = cp "$FLAB_IN_1" "$FLAB_OUT/weights.bin"\n' > "$W/$d/flabfile.ini"
done
(cd "$W/A" && $FLAB build >/dev/null)
sync

t0=$(now); (cd "$W/A" && $FLAB push >/dev/null 2>&1); t1=$(now)
t2=$(now); curl -sf -u "flab:$PW" -T "$W/A/big.bin" "$NGINX_URL/curl/big.bin"; t3=$(now)
t4=$(now); (cd "$W/B" && $FLAB pull >/dev/null 2>&1); t5=$(now)
t6=$(now); curl -sf -u "flab:$PW" -o "$W/curl-download.bin" "$NGINX_URL/curl/big.bin"; t7=$(now)
cmp -s "$W/A/big.bin" "$(cd "$W/B" && $FLAB path big)/weights.bin" || { echo "FAIL: pulled file differs"; exit 1; }
t8=$(now); (cd "$W/B" && $FLAB build > "$W/noop.out"); t9=$(now)
grep -q "no work to do" "$W/noop.out" || { echo "FAIL: build after pull was not a no-op"; exit 1; }

push=$(rate "$t0" "$t1"); cput=$(rate "$t2" "$t3"); pull=$(rate "$t4" "$t5"); cget=$(rate "$t6" "$t7")
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
echo "bench_remote: ${SIZE_MB} MiB artifact over loopback nginx (WebDAV, basic auth)"
echo "  flab push  ${push} MB/s   curl -T ${cput} MB/s   ratio $(ratio "$push" "$cput")"
echo "  flab pull  ${pull} MB/s   curl -o ${cget} MB/s   ratio $(ratio "$pull" "$cget")  (pull includes hash verify + cache commit)"
python3 -c "import sys; print('  no-op flab build after pull: %.1f ms' % ((float(sys.argv[2]) - float(sys.argv[1])) * 1e3))" "$t8" "$t9"

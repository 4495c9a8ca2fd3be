#!/bin/sh
# The whole test suite: installs what is missing, builds with -Werror and ASan+UBSan (host code),
# runs the unit, integration and end-to-end tests, then builds the libFuzzer targets with clang
# and runs each briefly. Run as root on Debian 12. Extra arguments go to the main `meson test`
# (e.g. --suite trust). AGORA_SKIP_FUZZ=1 skips the fuzz stage (and says so).
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
BUILD=${AGORA_TEST_BUILD:-build-test}
FUZZ=${AGORA_FUZZ_BUILD:-build-fuzz}
if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" -Dsanitize=true --buildtype=debugoptimized
fi
ninja -C "$BUILD"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
meson test -C "$BUILD" --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@" || status=1

logs="$BUILD/meson-logs/testlog.json"
if [ "${AGORA_SKIP_FUZZ:-0}" = 1 ]; then
    echo "fuzz stage skipped: AGORA_SKIP_FUZZ=1"
else
    if [ ! -d "$FUZZ" ]; then
        CC=clang meson setup "$FUZZ" -Dfuzz=true -Dbench=false --buildtype=debugoptimized
    fi
    ninja -C "$FUZZ"
    meson test -C "$FUZZ" --print-errorlogs --suite fuzz || status=1
    logs="$logs $FUZZ/meson-logs/testlog.json"
fi

# Containment check over the whole run: every sandbox process dies with its host, so no
# agora-runner of this build may be left once the tests are over.
sleep 1
leaked=$(pgrep -f "$(pwd)/$BUILD/sandbox/agora-runner" || true)
if [ -n "$leaked" ]; then
    echo "not ok: agora-runner processes outlived their hosts: $(echo $leaked)"
    # shellcheck disable=SC2086
    kill -KILL $leaked 2>/dev/null || true
    status=1
else
    echo "ok: no sandbox process outlived its host"
fi

# One closing line over both stages.
python3 - $logs <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line).get("result", "")
        key = "passed" if r in ("OK", "EXPECTEDFAIL") else "skipped" if r == "SKIP" else "failed"
        counts[key] += 1
print("tests: %(passed)d passed, %(failed)d failed, %(skipped)d skipped" % counts)
PY
exit $status

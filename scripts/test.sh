#!/bin/sh
# The whole test suite: installs what is missing, builds with -Werror and ASan+UBSan (host code),
# runs unit, integration and brief fuzz tests. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
BUILD=${AGORA_TEST_BUILD:-build-test}
if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" -Dsanitize=true --buildtype=debugoptimized
fi
ninja -C "$BUILD"
# ASan's leak checker needs ptrace-free exit paths; detect_leaks stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
meson test -C "$BUILD" --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@"

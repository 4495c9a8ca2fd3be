#!/bin/sh
# The end-to-end demo: installs what is missing, builds, and runs the three user journeys
# (developer, operator, clinic) in a temporary home. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
BUILD=${AGORA_DEMO_BUILD:-build}
# Warnings are errors in the test build (scripts/test.sh); a user build does not stop on them.
[ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release -Dwerror=false >/dev/null
ninja -C "$BUILD" >/dev/null
exec ./scripts/demo-journeys.sh "$BUILD"

#!/bin/bash
# Rule of two, checked from outside: every command that takes DICOM input runs under
# noparse_watch (ptrace), which fails if the agora host process itself ever reads, maps,
# sendfiles or splices a byte of an input file; only the sandboxed workers it forks may. A
# positive control (cat) proves the watcher catches a read.
# Usage: noparse.sh AGORA NOPARSE_WATCH PLUGIN_DIR
set -uo pipefail
A=$1 W=$2 P=$3
T=$(mktemp -d /tmp/agora-noparse.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AGORA_HOME=$T/clinic AGORA_LOG=error
# LeakSanitizer stops the process with ptrace at exit, which a traced process cannot do.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
fail=0
q() { "$@" >"$T/setup.log" 2>&1 || { echo "setup failed: $*"; cat "$T/setup.log"; exit 1; }; }
q "$A" dicom synth --modality CT --slices 6 --rows 64 --cols 64 --seed 5 -o "$T/in/ct"
q "$A" dicom synth --modality MR --slices 4 --rows 64 --cols 64 --seed 6 -o "$T/in/mr"
echo "not DICOM" >"$T/in/ct/readme.txt"
F=$(ls "$T"/in/ct/*.dcm | head -1)
WATCH=("$W" "$T/in/ct" "$T/in/mr" --)

"${WATCH[@]}" cat "$F" >/dev/null 2>"$T/control.err"
rc=$?
if [ $rc = 77 ]; then head -1 "$T/control.err"; echo "SKIP: the watcher cannot run here"; exit 77; fi
if [ $rc != 99 ]; then
    echo "not ok: the positive control (cat FILE) was not caught (exit $rc)"; cat "$T/control.err"
    exit 1
fi
echo "ok: the watcher catches a process that reads the file (cat)"

watched() { # NAME EXPECTED_EXIT COMMAND...
    local name=$1 want=$2
    shift 2
    "${WATCH[@]}" "$@" >"$T/$name.out" 2>"$T/$name.err"
    local rc=$?
    if [ $rc = 99 ]; then
        echo "not ok: $name: the host read DICOM bytes"; grep noparse_watch "$T/$name.err"; fail=1
    elif [ $rc != "$want" ]; then
        echo "not ok: $name exited $rc (expected $want)"; tail -5 "$T/$name.err"; fail=1
    else
        echo "ok: $name: the host never read an input byte"
    fi
}

head -c 32 /dev/urandom >"$T/secret"; chmod 600 "$T/secret"
# Second control, on the agora binary itself: the host does read its secret file.
"$W" "$T/secret" -- "$A" deid "$F" -o "$T/deid-control" --secret "$T/secret" >/dev/null 2>&1
rc=$?
if [ $rc != 99 ]; then
    echo "not ok: the watcher missed agora reading its secret file (exit $rc)"; exit 1
fi
echo "ok: the watcher sees the agora host's own reads (its secret file)"
watched deid 0 "$A" deid "$T/in" -o "$T/deid" --secret "$T/secret" --json
n=$(ls "$T/deid" | wc -l)
[ "$n" = 10 ] || { echo "not ok: deid wrote $n files, expected 10"; fail=1; }
watched dump 0 "$A" dicom dump "$F"
grep -q "PixelData" "$T/dump.out" || { echo "not ok: dump printed no PixelData line"; fail=1; }
watched dump-json 0 "$A" dicom dump --json "$F"
watched pixels 0 "$A" dicom pixels "$F" -o "$T/px.raw"
[ "$(stat -c %s "$T/px.raw")" = $((64 * 64 * 2)) ] || { echo "not ok: pixels size"; fail=1; }
watched scan 0 "$A" dicom scan --json "$T/in"
grep -q '"series"' "$T/scan.out" || { echo "not ok: scan output"; fail=1; }
watched dev-run 0 "$A" dev run --plugin "$P/stats.so" --json "$T/in/ct"

q "$A" keygen --out "$T/op"
q "$A" pack --manifest "$P/stats.manifest.json" --plugin "$P/stats.so" -o "$T/stats.agora"
q "$A" certify "$T/stats.agora" --catalog "$T/cat" --key "$T/op.key" --model per-series \
    --price 10 --currency EUR --vendor-share-bps 7000
q "$A" init --trust "$T/op.pub"
q "$A" sync "$T/cat"
q "$A" install org.agora.examples.stats
watched run 0 "$A" run --quiet "$T/in"
exit $fail

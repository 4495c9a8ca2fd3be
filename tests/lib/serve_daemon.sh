# shellcheck shell=bash
# Driving `agora serve` in the end-to-end tests (issue 12), with tests/lib/netns_peer.sh.
#
#   serve_start LOG ARGS...   start `$AGORA serve ARGS...` (stderr to LOG), wait until it listens
#   serve_stop                SIGTERM by pid, wait; returns its exit status
#   serve_kill                SIGKILL by pid, wait
#   results_check STUDY_UID N_SR N_SEG   QIDO-RS finds exactly N_SR SR and N_SEG SEG instances in
#                             the study, every one sent by $AGORA_AET, and dciodvfy (if installed)
#                             passes on each (the warnings accepted are listed with their reason)
#   queue_json HOME           `agora queue --json`
#   qjobs HOME ARGS...        tests/lib/queue.py over `agora queue --json`
#
# Needs AGORA (the agora binary) and, for results_check, PACS_URL and PEER (netns_peer.sh).
# The process started here: SERVE_PID.

SERVE_PID=
SERVE_LOG=

serve_start() {
    SERVE_LOG=$1
    shift
    local before i
    before=$(grep -c "listening on" "$SERVE_LOG" 2>/dev/null || true)
    "$AGORA" serve "$@" 2>>"$SERVE_LOG" &
    SERVE_PID=$!
    for ((i = 0; i < 300; i++)); do
        if [ "$(grep -c "listening on" "$SERVE_LOG" 2>/dev/null || true)" -gt "${before:-0}" ]; then
            return 0
        fi
        if ! kill -0 "$SERVE_PID" 2>/dev/null; then
            wait "$SERVE_PID" 2>/dev/null || true
            SERVE_PID=
            echo "agora serve exited at start; its log:" >&2
            tail -20 "$SERVE_LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "agora serve did not listen within 30 s" >&2
    return 1
}

serve_stop() {
    local rc=0
    [ -n "$SERVE_PID" ] || return 0
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" || rc=$?
    SERVE_PID=
    return $rc
}

serve_kill() {
    [ -n "$SERVE_PID" ] || return 0
    kill -9 "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
}

queue_json() {
    "$AGORA" queue --json --home "$1"
}

qjobs() {
    local home=$1
    shift
    "$AGORA" queue --json --home "$home" | $PY "$NETNS_LIB/queue.py" "$@"
}

# dciodvfy writes everything to stderr and its exit status is not reliable, so both are read.
# Warnings accepted, one pattern a line, each with its reason (the same as export-seg's):
RESULTS_DCIODVFY_ALLOW=(
    # IHE AIR asks for Device UID in Contributing Equipment; the IOD does not list it there.
    'Attribute is not present in standard DICOM IOD - \(0x0018,0x1002\) UI Device UID'
    # ... which makes the object a Standard Extended SOP Class (follows from the line above).
    'Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class'
    # SR: private coding schemes (PS3.16 8.2, designators beginning with "99"), each declared in
    # CodingSchemeIdentificationSequence; dciodvfy knows only the standard designators.
    'Unrecognized defined term <99[A-Za-z0-9._+-]*> for value 1 of attribute <Coding Scheme Designator>'
)

# dciodvfy_ok FILE: 0 when dciodvfy reports no error and only allowed warnings.
dciodvfy_ok() {
    local f=$1 out rc=0 line pat allowed
    out=$(dciodvfy "$f" 2>&1) || rc=$?
    if [ $rc != 0 ] || echo "$out" | grep -q '^Error'; then
        echo "dciodvfy $(basename "$f"): rc $rc" >&2
        echo "$out" | grep '^Error' | head -5 >&2
        return 1
    fi
    while IFS= read -r line; do
        case "$line" in Warning*) ;; *) continue ;; esac
        allowed=0
        for pat in "${RESULTS_DCIODVFY_ALLOW[@]}"; do
            echo "$line" | grep -Eq "$pat" && allowed=1 && break
        done
        [ $allowed = 1 ] || {
            echo "dciodvfy $(basename "$f"): $line" >&2
            return 1
        }
    done <<<"$out"
}

results_check() {
    local study=$1 n_sr=$2 n_seg=$3 got m f dir
    for m in SR SEG; do
        local want=$n_sr
        [ $m = SEG ] && want=$n_seg
        got=$($PEER instances "$PACS_URL" "$study" $m) || return 1
        [ "$got" = "$want" ] || {
            echo "results: $got $m instance(s) in the study, expected $want" >&2
            return 1
        }
        [ "$want" = 0 ] && continue
        got=$($PEER remote-aets "$PACS_URL" "$study" $m)
        [ "$got" = "$AGORA_AET" ] || {
            echo "results: the $m instances were sent by '$got', not $AGORA_AET" >&2
            return 1
        }
    done
    command -v dciodvfy >/dev/null 2>&1 || {
        echo "note: dciodvfy (dicom3tools) not installed: SR/SEG not validated"
        return 0
    }
    dir=$(mktemp -d "${TMPDIR:-/tmp}/agora-results.XXXXXX")
    $PEER download "$PACS_URL" "$study" SR "$dir" >/dev/null &&
        $PEER download "$PACS_URL" "$study" SEG "$dir" >/dev/null || {
        rm -rf "$dir"
        return 1
    }
    for f in "$dir"/*.dcm; do
        [ -e "$f" ] || continue
        dciodvfy_ok "$f" || {
            rm -rf "$dir"
            return 1
        }
    done
    rm -rf "$dir"
}

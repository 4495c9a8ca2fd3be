# shellcheck shell=bash
# Peer harness for `agora serve` tests (issue 12), sourced by tests/integration/serve*/ scripts.
#
# Every test runs in its OWN network namespace (ip netns, a unique name, only `lo`, brought up),
# so Orthanc 1.10 and storescp, which cannot bind an address and listen on 0.0.0.0, are reachable
# from loopback only, fixed ports never clash between tests run in parallel, and the daemon,
# Orthanc and the DCMTK tools share one loopback. The namespace is deleted by a trap whatever
# happens; every process is started here and stopped by its pid.
#
# Use:
#   . "$LIB/netns_peer.sh"
#   netns_enter "$0" "$@"        # re-executes the script inside a fresh namespace; returns there
#   orthanc_start "$W/pacs"      # Orthanc with a generated config under $W/pacs
#   ...                          # "$PEER" (tests/lib/peer.py) for REST/QIDO/STOW
#   orthanc_stop
#   netns_wait_port PORT [SECONDS], netns_stop PID    (also the API send-dimse uses)
#
# Functions return non-zero with a message on stderr; callers decide (most tests `fail`).
# Processes this file starts: ORTHANC_PID, STORESCP_PID (each stopped by the matching *_stop and
# by peer_cleanup, which a test calls from its EXIT trap).

NETNS_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
PEER="$PY $NETNS_LIB/peer.py"

# Ports inside the namespace: private to one test, so fixed values are fine.
: "${PACS_AET:=PACS}"
: "${PACS_DICOM_PORT:=4242}"
: "${PACS_HTTP_PORT:=8042}"
: "${AGORA_AET:=AGORA}"
: "${AGORA_DICOM_PORT:=11113}"
: "${AGORA_HTTP_PORT:=8080}"
PACS_URL=http://127.0.0.1:$PACS_HTTP_PORT
ORTHANC_PID=
STORESCP_PID=

# peer_skip REASON: exit 77 (meson: skipped) with the reason.
peer_skip() {
    echo "SKIP: $*"
    exit 77
}

# peer_require CMD...: skip when a peer program is missing (scripts/deps.sh installs them).
peer_require() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 ||
            peer_skip "$c not installed (scripts/deps.sh installs dcmtk, orthanc, orthanc-dicomweb, dicom3tools)"
    done
}

# peer_require_orthanc: Orthanc and its DICOMweb plugin (QIDO-RS, STOW-RS client).
peer_require_orthanc() {
    peer_require Orthanc
    ORTHANC_DICOMWEB=$(ls /usr/lib/orthanc/libOrthancDicomWeb.so* 2>/dev/null | head -1)
    [ -n "$ORTHANC_DICOMWEB" ] ||
        peer_skip "orthanc-dicomweb not installed (scripts/deps.sh installs it)"
}

# netns_enter SCRIPT ARGS...: outside a namespace, create one (unique name), bring lo up,
# re-execute SCRIPT inside it with the same arguments, then kill whatever is still running in
# that namespace (only this test's processes can be there), delete it and exit with the
# script's status. Inside (AGORA_NETNS set and matching), return so the script continues.
netns_enter() {
    if [ -n "${AGORA_NETNS:-}" ] && [ "$(ip netns identify $$ 2>/dev/null)" = "$AGORA_NETNS" ]; then
        return 0
    fi
    command -v ip >/dev/null 2>&1 || peer_skip "ip (iproute2) not installed"
    [ "$(id -u)" = 0 ] || peer_skip "network namespaces need root (ip netns add)"
    local script=$1 name
    shift
    name="agora-$(basename "$script" .sh | tr -c 'a-zA-Z0-9\n' -)-$$-$RANDOM"
    name=${name:0:60}
    ip netns add "$name" 2>/dev/null || peer_skip "cannot create a network namespace (ip netns add)"
    # shellcheck disable=SC2064
    trap "netns__reap '$name'" EXIT
    trap 'exit 130' INT TERM
    ip netns exec "$name" ip link set lo up || {
        echo "netns: cannot bring lo up in $name" >&2
        exit 1
    }
    local rc=0
    ip netns exec "$name" env AGORA_NETNS="$name" bash "$script" "$@" || rc=$?
    exit $rc
}

# Kill what is left in the namespace (by pid; the namespace is this test's own), then delete it.
netns__reap() {
    local name=$1 p left
    left=$(ip netns pids "$name" 2>/dev/null || true)
    if [ -n "$left" ]; then
        echo "netns: stopping processes left in $name: $(echo $left)" >&2
        for p in $left; do kill "$p" 2>/dev/null || true; done
        for _ in $(seq 1 50); do
            [ -z "$(ip netns pids "$name" 2>/dev/null)" ] && break
            sleep 0.1
        done
        for p in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    fi
    ip netns del "$name" 2>/dev/null || true
}

# orthanc_config DIR: write DIR/orthanc.json. Env knobs (set before calling):
#   ORTHANC_ALLOW_AGORA=0     Orthanc refuses C-STOREs from AEs it does not know, and does not
#                             list the agora AE (a "permanent rejection" peer)
#   ORTHANC_AGORA_PORT        the port Orthanc's "agora" modality points at (default AGORA_DICOM_PORT)
orthanc_config() {
    local d=$1 always=true modalities
    mkdir -p "$d/db"
    modalities="\"agora\": { \"AET\": \"$AGORA_AET\", \"Host\": \"127.0.0.1\", \"Port\": ${ORTHANC_AGORA_PORT:-$AGORA_DICOM_PORT} }"
    if [ "${ORTHANC_ALLOW_AGORA:-1}" = 0 ]; then
        always=false
        # A modality Orthanc knows, with store refused: the agora AE is not it.
        modalities="\"agora\": { \"AET\": \"SOMEONE_ELSE\", \"Host\": \"127.0.0.1\", \"Port\": ${ORTHANC_AGORA_PORT:-$AGORA_DICOM_PORT}, \"AllowStore\": false }"
    fi
    cat >"$d/orthanc.json" <<JSON
{
  "Name": "AGORA_TEST_PACS",
  "StorageDirectory": "$d/db", "IndexDirectory": "$d/db",
  "Plugins": ["$ORTHANC_DICOMWEB"],
  "HttpServerEnabled": true, "HttpPort": $PACS_HTTP_PORT,
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "DicomServerEnabled": true, "DicomAet": "$PACS_AET", "DicomPort": $PACS_DICOM_PORT,
  "DicomCheckCalledAet": true, "DicomAlwaysAllowStore": $always, "DicomAlwaysAllowEcho": true,
  "DicomScuTimeout": 10, "StableAge": 60,
  "DicomModalities": { $modalities },
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": false,
                "Servers": { "agora": [ "http://127.0.0.1:$AGORA_HTTP_PORT/dicomweb/" ] } }
}
JSON
}

# orthanc_start DIR: start Orthanc (config written unless DIR/orthanc.json exists, so a restart
# keeps its storage and settings) and wait until its REST API answers (polled, 30 s at most).
orthanc_start() {
    local d=$1
    [ -n "${ORTHANC_DICOMWEB:-}" ] || peer_require_orthanc
    [ -f "$d/orthanc.json" ] || orthanc_config "$d"
    Orthanc "$d/orthanc.json" >>"$d/orthanc.log" 2>&1 &
    ORTHANC_PID=$!
    if ! $PEER wait-rest "$PACS_URL" 30; then
        echo "orthanc did not answer on $PACS_URL; its log:" >&2
        tail -20 "$d/orthanc.log" >&2
        orthanc_stop
        return 1
    fi
}

# orthanc_stop [-9]: SIGTERM by pid and wait (Orthanc takes 1-4 s to stop); with -9, SIGKILL
# (0.01 s; for the end of a test, when its storage is not used again).
orthanc_stop() {
    if [ -n "$ORTHANC_PID" ]; then
        kill ${1:-} "$ORTHANC_PID" 2>/dev/null || true
        wait "$ORTHANC_PID" 2>/dev/null || true
        ORTHANC_PID=
    fi
}

# storescp_start DIR AET PORT: DCMTK's storescp writing into DIR (a stand-in receiver).
storescp_start() {
    mkdir -p "$1"
    storescp -aet "$2" +xa -od "$1" "$3" >>"$1.log" 2>&1 &
    STORESCP_PID=$!
    peer_wait_port "$3" 10 || { echo "storescp did not listen on $3" >&2; return 1; }
}

storescp_stop() {
    if [ -n "$STORESCP_PID" ]; then
        kill "$STORESCP_PID" 2>/dev/null || true
        wait "$STORESCP_PID" 2>/dev/null || true
        STORESCP_PID=
    fi
}

# peer_wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT.
peer_wait_port() {
    local i n=$(($2 * 20))
    for ((i = 0; i < n; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# netns_wait_port PORT [SECONDS] and netns_stop PID: the interface of i12-send's first
# netns_peer.sh (send-dimse), kept so both branches' tests source this one file.
netns_wait_port() {
    peer_wait_port "$1" "${2:-20}"
}
# netns_stop PID: SIGTERM, up to 10 s, then SIGKILL; wait.
netns_stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# peer_cleanup: stop the peers this file started (call it from the test's EXIT trap).
peer_cleanup() {
    storescp_stop
    orthanc_stop -9
}

# Sourced by integration tests that run network peers whose sockets bind 0.0.0.0 (DCMTK's
# storescp, Orthanc 1.10): the test re-executes itself inside a private network namespace
# holding only lo (`unshare --net --fork`), where 0.0.0.0 is loopback only. Every peer is
# started by the test and stopped by its pid (netns_stop).
#
#   . "$LIB/netns_peer.sh"
#   netns_enter "$0" "$@"     # returns inside the namespace (exec's itself once), or exits 77
#   netns_wait_port PORT [SECONDS]   # until something accepts on 127.0.0.1:PORT
#   netns_stop PID                    # SIGTERM, wait (SIGKILL after 10 s)

netns_enter() {
    if [ -n "${AGORA_NETNS_INSIDE:-}" ]; then
        ip link set lo up || { echo "SKIP: cannot bring lo up in the network namespace"; exit 77; }
        return 0
    fi
    command -v unshare >/dev/null || { echo "SKIP: unshare (util-linux) not installed"; exit 77; }
    unshare --net --fork true 2>/dev/null ||
        { echo "SKIP: cannot create a network namespace here (needs root or user namespaces)"; exit 77; }
    local script=$1
    shift
    AGORA_NETNS_INSIDE=1 exec unshare --net --fork bash "$script" "$@"
}

netns_wait_port() {
    local port=$1 secs=${2:-20} py=python3
    [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    $py - "$port" "$secs" <<'PY'
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + secs
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

netns_stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

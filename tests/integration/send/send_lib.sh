# Sourced by the send tests after tests/lib/netns_peer.sh: the check helpers, a work directory
# that is removed at exit after the peers still running are stopped (the scripts keep each
# peer's pid in SCP, SRV, FAKE or ORTHANC and empty it once they stopped it), and
# make_send_files.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fails=0
fail() { echo "not ok: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
# field FILE KEY: a top-level field of `agora dicom send --json`
field() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
SCP= SRV= FAKE= ORTHANC=
_send_cleanup() {
    netns_stop "$SCP"
    netns_stop "$SRV"
    netns_stop "$FAKE"
    netns_stop "$ORTHANC"
    rm -rf "$T"
}
# send_workdir NAME: a fresh directory under /tmp becomes the current one.
send_workdir() {
    T=$(mktemp -d "/tmp/agora-$1.XXXXXX")
    trap _send_cleanup EXIT
    cd "$T"
}
# send_done NAME: exit 1 when a check failed.
send_done() {
    [ $fails = 0 ] || { echo "$fails check(s) failed"; exit 1; }
    echo "all $1 checks passed"
}

# make_send_files AGORA EXAMPLES_DIR (in the current directory)
# writes studies/ct (a synthetic 8-slice CT) and results/ (the SR and SEG that
# `agora results export` writes for a real sandboxed run of the threshold example on it), and
# sets STUDY, N_CT, N_RES. Needs AGORA_RUNNER in the environment, as agora run does.
make_send_files() {
    local A=$1 P=$2
    _q() { "$@" >/dev/null 2>&1 || { echo "command failed: $*"; "$@"; exit 1; }; }
    _q "$A" keygen --out keys/op
    _q "$A" keygen --out keys/acme
    _q "$A" pack --manifest "$P/threshold.manifest.json" --plugin "$P/threshold.so" --sign keys/acme.key -o threshold.agora
    _q "$A" certify threshold.agora --catalog cat --key keys/op.key --vendor-key keys/acme.pub --model free
    _q "$A" init --home "$PWD/home" --trust keys/op.pub
    _q "$A" sync cat --home "$PWD/home"
    _q "$A" install org.agora.examples.threshold --home "$PWD/home"
    export AGORA_HOME=$PWD/home
    _q "$A" dicom synth --modality CT --slices 8 --rows 48 --cols 40 -o studies/ct
    _q "$A" run studies
    STUDY=$("$A" results studies | cut -f1 | head -1)
    _q "$A" results export "$STUDY" --format dicom -o results --source studies
    N_CT=$(ls studies/ct | wc -l)
    N_RES=$(find results -type f -name '*.dcm' | wc -l)
    [ "$N_RES" -ge 2 ] || { echo "not ok: the export wrote $N_RES objects (expected an SR and a SEG)"; exit 1; }
}

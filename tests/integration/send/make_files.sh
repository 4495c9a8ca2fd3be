# Sourced by the send tests: make_send_files AGORA EXAMPLES_DIR (in the current directory)
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

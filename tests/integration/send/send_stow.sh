#!/bin/bash
# `agora dicom send --stow` (issue 12 item 7) inside a private network namespace:
#  - a scripted STOW-RS server (fake_stow.py) checks the multipart body and gives each answer
#    its class: 200 delivered, 202 with one failed part (that file permanent refused-by-peer,
#    the others delivered), 409 permanent, 503 transient, a redirect to another host not
#    followed (permanent configuration-error), an 8 MiB answer refused (protocol-error), a
#    server that stalls is a transient timeout within --timeout; an HTTPS server whose
#    certificate does not verify is refused (verification stays on);
#  - Orthanc with the DICOMweb plugin (skipped with the reason when absent): the CT and the
#    SR + SEG of a real run, sent by STOW-RS, are found by QIDO-RS; a resend is delivered and
#    stores nothing new; a wrong path is permanent; C-STORE to Orthanc with a wrong called AE
#    is permanent configuration-error.
# Usage: send_stow.sh AGORA EXAMPLES_DIR
set -euo pipefail
A=$1 P=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib/netns_peer.sh"
netns_enter "$0" "$@"
. "$HERE/send_lib.sh"
send_workdir send-stow
make_send_files "$A" "$P"
N=$((N_CT + N_RES))

# --- the scripted server ---
$PY "$HERE/fake_stow.py" 18080 &
FAKE=$!
netns_wait_port 18080 || { echo "not ok: fake STOW server did not start"; exit 1; }
U=http://127.0.0.1:18080
# mode, exit, batch class, delivered count
while read -r MODE EXIT CLASS DELIVERED; do
    rc=0
    t0=$(date +%s%N)
    "$A" dicom send studies/ct --stow "$U/$MODE" --timeout 2 --json >"$MODE.json" 2>"$MODE.err" || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    got=$(field "$MODE.json" class 2>/dev/null || echo "?")
    d=$(field "$MODE.json" delivered 2>/dev/null || echo "?")
    if [ $rc = "$EXIT" ] && [ "$got" = "$CLASS" ] && [ "$d" = "$DELIVERED" ] && [ $ms -lt 8000 ]; then
        ok "STOW $MODE: exit $rc, class $got, $d delivered, ${ms} ms"
    else
        fail "STOW $MODE: exit $rc/$EXIT class $got/$CLASS delivered $d/$DELIVERED ${ms} ms: $(cat "$MODE.err") $(head -c 800 "$MODE.json")"
    fi
done <<CASES
ok 0 delivered $N_CT
partial 1 refused-by-peer $((N_CT - 1))
conflict 1 refused-by-peer 0
busy 75 server-error 0
redirect 1 configuration-error 0
huge 1 protocol-error 0
slow 75 timeout 0
CASES
$PY - partial.json <<'PY' && ok "202: exactly the failed part is permanent, with its failure reason" || fail "partial details: $(cat partial.json)"
import json, sys
d = json.load(open(sys.argv[1]))
bad = [f for f in d["files"] if f["outcome"] != "delivered"]
assert len(bad) == 1 and bad[0]["class"] == "refused-by-peer", bad
assert "0x0110" in bad[0]["message"], bad[0]["message"]
assert d["files"][0] is not None and bad[0]["path"] == d["files"][0]["path"]
PY
netns_stop "$FAKE"
FAKE=
# HTTPS with a self-signed certificate: verification is on, so the request is refused.
if command -v openssl >/dev/null; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout tls.key -out tls.crt -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
    $PY "$HERE/fake_stow.py" 18443 tls.crt tls.key &
    FAKE=$!
    netns_wait_port 18443 || fail "the HTTPS fake STOW server did not start"
    rc=0
    "$A" dicom send studies/ct --stow https://127.0.0.1:18443/ok --timeout 5 --json >tls.json 2>/dev/null || rc=$?
    [ $rc = 1 ] && [ "$(field tls.json class)" = configuration-error ] && grep -q "certificate" tls.json &&
        ok "an unverifiable TLS certificate is refused (permanent configuration-error)" ||
        fail "TLS: exit $rc $(head -c 600 tls.json)"
    netns_stop "$FAKE"
    FAKE=
else
    echo "SKIP (TLS check): openssl not installed"
fi

# --- Orthanc ---
PLUGIN=$(ls /usr/lib/orthanc/libOrthancDicomWeb.so* 2>/dev/null | head -1 || true)
if ! command -v Orthanc >/dev/null || [ -z "$PLUGIN" ]; then
    echo "SKIP (Orthanc part): Orthanc or orthanc-dicomweb not installed (scripts/deps.sh OPTIONAL)"
    [ $fails = 0 ] || exit 1
    echo "the scripted-server checks passed; Orthanc checks skipped"
    exit 0
fi
mkdir -p orthanc/db
cat >orthanc/config.json <<JSON
{ "Name": "AGORA_TEST_PACS", "StorageDirectory": "$T/orthanc/db", "IndexDirectory": "$T/orthanc/db",
  "Plugins": ["$PLUGIN"], "HttpServerEnabled": true, "HttpPort": 18042,
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "DicomServerEnabled": true, "DicomAet": "PACS", "DicomPort": 14242,
  "DicomCheckCalledAet": true, "DicomAlwaysAllowStore": true, "DicomAlwaysAllowEcho": true,
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
Orthanc orthanc/config.json >orthanc.log 2>&1 &
ORTHANC=$!
H=http://127.0.0.1:18042
for _ in $(seq 1 200); do curl -sf $H/system >/dev/null && break; sleep 0.05; done
curl -sf $H/system >/dev/null || { tail -20 orthanc.log; echo "not ok: Orthanc did not start"; exit 1; }
rc=0
"$A" dicom send studies/ct results --stow $H/dicom-web --json >orthanc.json 2>orthanc.err || rc=$?
[ $rc = 0 ] && [ "$(field orthanc.json delivered)" = "$N" ] && ok "STOW-RS of $N files to Orthanc delivered" ||
    fail "STOW to Orthanc: exit $rc $(cat orthanc.err) $(head -c 800 orthanc.json)"
count() { curl -sf "$H/dicom-web/studies/$STUDY/$1" | $PY -c 'import json,sys; t=sys.stdin.read(); print(len(json.loads(t)) if t.strip() else 0)'; }
[ "$(count instances)" = "$N" ] && ok "QIDO-RS finds the $N instances in the study" || fail "QIDO instances: $(count instances) of $N"
for mod in CT SR SEG; do
    [ "$(count "series?Modality=$mod")" = 1 ] && ok "QIDO-RS finds the $mod series" || fail "QIDO $mod: $(count "series?Modality=$mod")"
done
rc=0
"$A" dicom send results --stow $H/dicom-web/ --json >again.json 2>/dev/null || rc=$?
[ $rc = 0 ] && [ "$(count instances)" = "$N" ] && ok "a resend (same UIDs) is delivered and stores nothing new" ||
    fail "resend: exit $rc, $(count instances) instances"
rc=0
"$A" dicom send results --stow $H/no-such-root --json >wrongurl.json 2>/dev/null || rc=$?
[ $rc = 1 ] && [ "$(field wrongurl.json class)" = configuration-error ] && ok "a wrong STOW path is permanent configuration-error" ||
    fail "wrong path: exit $rc $(cat wrongurl.json)"
rc=0
"$A" dicom send results --to NOTPACS@127.0.0.1:14242 --json >orthanc_ae.json 2>/dev/null || rc=$?
[ $rc = 1 ] && [ "$(field orthanc_ae.json class)" = configuration-error ] &&
    ok "C-STORE to Orthanc with a wrong called AE: permanent configuration-error" || fail "Orthanc wrong AE: exit $rc $(cat orthanc_ae.json)"
rc=0
"$A" dicom send results --to PACS@127.0.0.1:14242 --json >orthanc_dimse.json 2>/dev/null || rc=$?
[ $rc = 0 ] && [ "$(field orthanc_dimse.json delivered)" = "$N_RES" ] &&
    ok "C-STORE of the SR and SEG to Orthanc delivered (contexts from the files)" || fail "Orthanc C-STORE: exit $rc $(cat orthanc_dimse.json)"
send_done send-stow

#!/bin/bash
# Integration test of `agora queue [--json] [--state S] [--limit N]`, `agora queue show|retry|
# cancel JOB` over a home whose queue queue_drive fills and moves through the real API: the
# listing and its JSON, no UID in any output, retry and cancel with their refusals (exit 1 and
# the message naming the state), usage errors (exit 2), and the ledger beside the queue intact.
# usage: test_queue_cli.sh AGORA QUEUE_DRIVE
set -u
agora=$1 drive=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
home=$tmp/home
mkdir -p "$home"
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
expect_rc() { # want what cmd...
    local want=$1 what=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
    if [ "$rc" = "$want" ]; then ok "$what (exit $rc)"; else bad "$what: exit $rc, wanted $want"; cat "$tmp/out" "$tmp/err"; fi
}
has() { # what file text
    if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1: no '$3' in: $(cat "$2")"; fi
}
q() { "$agora" queue --home "$home" "$@"; }
json() { # what python-expression-over-j (the last --json output in $tmp/out)
    if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert eval(sys.argv[2]), j' "$tmp/out" "$2"
    then ok "$1"; else bad "$1"; fi
}
S1=1.2.826.0.1.3680043.10.999.1 S2=1.2.826.0.1.3680043.10.999.2

expect_rc 0 "empty queue" q
has "empty queue says so" "$tmp/out" "0 jobs: the queue is empty"
expect_rc 0 "empty queue --json" q --json
json "empty json" 'j["total"] == 0 and j["jobs"] == [] and j["counts"]["waiting"] == 0'

# three jobs; the first again is a duplicate with the same id
read -r a dup < <("$drive" "$home" enqueue org.example.a "$S1" 5 0 pacs) && [ "$dup" = 0 ] && ok "enqueue a" || bad "enqueue a"
read -r b dup < <("$drive" "$home" enqueue org.example.b "$S1" 5 0 pacs) && [ "$dup" = 0 ] && ok "enqueue b" || bad "enqueue b"
read -r c dup < <("$drive" "$home" enqueue org.example.a "$S2" 3 1 pacs) && [ "$dup" = 0 ] && ok "enqueue c (urgent)" || bad "enqueue c"
read -r a2 dup < <("$drive" "$home" enqueue org.example.a "$S1" 5 0 pacs)
[ "$a2" = "$a" ] && [ "$dup" = 1 ] && ok "same study again: duplicate, same id" || bad "duplicate: got $a2 $dup"

expect_rc 0 "list" q
has "table header" "$tmp/out" "ID     STATE     PLUGIN"
has "counts line" "$tmp/out" "3 jobs: 3 waiting"
has "plugin@version and attempt" "$tmp/out" "org.example.a@1.0.0"
cp "$tmp/out" "$tmp/list.txt"
expect_rc 0 "list --json" q --json
cp "$tmp/out" "$tmp/list.json"
json "json: 3 waiting jobs, newest first" 'j["total"] == 3 and [x["id"] for x in j["jobs"]] == [int(v) for v in "'"$c $b $a"'".split()] and all(x["state"] == "waiting" and x["attempt"] == 0 and x["max_attempts"] == 8 for x in j["jobs"])'
json "json: study is a 12-hex hash, key 64 hex" 'all(len(x["study"]) == 12 and len(x["key"]) == 64 for x in j["jobs"])'

# the daemon's steps: the urgent job runs first, its delivery fails transiently
[ "$("$drive" "$home" run)" = "$c" ] && ok "urgent job claimed first and settled" || bad "run order"
[ "$("$drive" "$home" send transient connection-refused 'connection refused by PACS')" = "$c" ] && ok "transient send" || bad "transient send"
expect_rc 0 "show c --json" q show "$c" --json
json "sending, attempt 1, next attempt set, class kept" 'j["state"] == "sending" and j["phase"] == "send" and j["attempt"] == 1 and j["next_attempt_at"] and j["last_error_class"] == "connection-refused" and j["run_attempts"] == 1'
expect_rc 0 "list shows the sending job" q
has "sending row" "$tmp/out" "connection-refused: connection refused by PACS"
has "attempt 1/8" "$tmp/out" "1/8"
expect_rc 0 "show c (text)" q show "$c"
has "show: state and phase" "$tmp/out" "job $c: sending (send phase)"
has "show: sizes, no UIDs" "$tmp/out" "study, 1 series, 3 instances"

expect_rc 0 "retry a sending job" q retry "$c"
has "retry says the new state" "$tmp/out" "job $c retried: now sending, next attempt"
expect_rc 1 "retry a waiting job is refused" q retry "$a"
has "refusal names the state" "$tmp/err" "job $a is waiting; only failed, retryable or sending jobs can be retried"

# a permanent rejection: failed with its class; retry sends again; delivered -> done
[ "$("$drive" "$home" send permanent refused-by-peer 'status 0xA900')" = "$c" ] && ok "permanent send" || bad "permanent send"
expect_rc 0 "list --state failed --json" q --state failed --json
json "one failed job with its class" 'len(j["jobs"]) == 1 and j["jobs"][0]["id"] == '"$c"' and j["jobs"][0]["last_error_class"] == "refused-by-peer" and j["counts"]["failed"] == 1'
expect_rc 0 "retry the failed job" q retry "$c" --json
json "retry --json: sending again, attempts restart" 'j["state"] == "sending" and j["attempt"] == 0'
[ "$("$drive" "$home" send delivered)" = "$c" ] && ok "delivered" || bad "delivered"
expect_rc 1 "retry a done job is refused" q retry "$c"
has "done refusal" "$tmp/err" "agora queue retry: job $c is done; only failed, retryable or sending jobs can be retried"
expect_rc 1 "cancel a done job is refused" q cancel "$c"
has "cancel refusal" "$tmp/err" "job $c is done; only waiting, retryable, running or sending jobs can be cancelled"

# a run that fails permanently, then cancel and its refusal
[ "$("$drive" "$home" fail-run input-refused 'unsuitable series')" = "$a" ] && ok "run failed (oldest normal job)" || bad "fail-run"
expect_rc 0 "retry a run failure" q retry "$a"
has "back to waiting" "$tmp/out" "job $a retried: now waiting"
expect_rc 0 "cancel a waiting job" q cancel "$a"
has "cancel says so" "$tmp/out" "job $a cancelled: now cancelled"
expect_rc 1 "cancel twice is refused" q cancel "$a"
has "cancelled refusal" "$tmp/err" "job $a is cancelled"
expect_rc 1 "unknown job" q show 999
has "unknown job message" "$tmp/err" "no job 999 in the queue"
expect_rc 1 "retry unknown job" q retry 999

# studies still receiving (the intake's listing) above the jobs, and `agora queue force`
"$agora" dicom synth --modality CT --slices 3 --rows 16 --cols 16 --seed 7 -o "$tmp/st1" >/dev/null 2>&1 &&
    "$agora" dicom synth --modality CT --slices 2 --rows 16 --cols 16 --seed 8 -o "$tmp/st2" >/dev/null 2>&1 &&
    ok "two synthetic studies" || bad "dicom synth"
[ "$("$drive" "$home" spool "$tmp"/st1/*.dcm)" = 3 ] && ok "study 1 spooled and grouped (3)" || bad "spool study 1"
[ "$("$drive" "$home" spool "$tmp"/st2/*.dcm)" = 2 ] && ok "study 2 spooled and grouped (2)" || bad "spool study 2"
expect_rc 0 "list with studies receiving" q
has "studies block" "$tmp/out" "2 studies still receiving or waiting:"
has "studies header" "$tmp/out" "STUDY KEY        STATE     SERIES INSTANCES COMPLETES IN"
grep -qE '^[0-9a-f]{16} +receiving +1 +3 +([0-9]+m[0-9]{2}s|[0-9]+s) +20..-..-..T..:..:..Z +CT +quiet timers' "$tmp/out" && ok "study 1 row: 1 series, 3 instances, countdown, force time, CT" || bad "study row: $(cat "$tmp/out")"
[ "$(grep -n 'STUDY KEY' "$tmp/out" | cut -d: -f1)" -lt "$(grep -n '^ID ' "$tmp/out" | cut -d: -f1)" ] && ok "studies above the jobs" || bad "order: $(cat "$tmp/out")"
expect_rc 0 "list --json with studies" q --json
json "json: studies with key, counts, countdown" 'len(j["studies"]) == 2 and j["studies_more"] is False and all(len(x["key"]) == 16 and x["state"] == "receiving" and 0 < x["remaining_ms"] <= 60000 and x["modalities"] == ["CT"] and x["complete_at"] and x["force_at"] for x in j["studies"]) and sorted(x["instances"] for x in j["studies"]) == [2, 3] and "jobs" in j'
k1=$(python3 -c 'import json,sys; print([x["key"] for x in json.load(open(sys.argv[1]))["studies"] if x["instances"] == 3][0])' "$tmp/out")
k2=$(python3 -c 'import json,sys; print([x["key"] for x in json.load(open(sys.argv[1]))["studies"] if x["instances"] == 2][0])' "$tmp/out")
expect_rc 0 "force hold (8-digit prefix)" q force "${k1:0:8}" --action hold
has "hold says so" "$tmp/out" "study ${k1:0:8} held: it waits until forced again"
expect_rc 0 "list shows it held" q --json
json "json: held, no countdown" '[x for x in j["studies"] if x["key"] == "'"$k1"'"][0]["state"] == "held" and [x for x in j["studies"] if x["key"] == "'"$k1"'"][0]["remaining_ms"] is None'
expect_rc 1 "hold twice is refused" q force "$k1" --action hold
has "hold refusal" "$tmp/err" "is held already"
expect_rc 0 "force proceed (--json)" q force "$k1" --json
json "json: complete" 'j["state"] == "complete" and j["action"] == "proceed" and j["key"] == "'"$k1"'"'
expect_rc 0 "list shows it waiting for the hand-over" q
has "complete row" "$tmp/out" "hand-over to the queue"
expect_rc 1 "force a complete study is refused" q force "$k1"
has "complete refusal" "$tmp/err" "is complete already: only a receiving or held study can be forced"
expect_rc 0 "force discard" q force "$k2" --action discard
has "discard says so" "$tmp/out" "discarded: it will not run"
expect_rc 0 "a discarded study is no longer listed" q --json
json "json: only study 1 left" '[x["key"] for x in j["studies"]] == ["'"$k1"'"]'
expect_rc 1 "force an unknown study" q force 0123456789abcdef
has "unknown study message" "$tmp/err" "no study with key 0123456789abcdef"
expect_rc 1 "force with a short key" q force abc
has "short key message" "$tmp/err" "a study key is 6 to 16 hex digits"
expect_rc 2 "force with a bad action" q force "$k1" --action later
has "bad action message" "$tmp/err" "--action is proceed, discard or hold"
expect_rc 2 "force without a key" q force
expect_rc 0 "force --help" "$agora" queue force --help
has "force help" "$tmp/out" "--action A"
spool_uids=$(python3 -c '
import sqlite3,sys
c=sqlite3.connect(sys.argv[1])
print(" ".join(r[0] for r in c.execute("SELECT study_instance_uid FROM spool_study UNION SELECT sop_instance_uid FROM spool_instance")))' "$home/spool/spool.db")
q >"$tmp/st.txt"; q --json >"$tmp/st.json"
leak=0; for u in $spool_uids; do grep -qF "$u" "$tmp/st.txt" "$tmp/st.json" && leak=1; done
[ -n "$spool_uids" ] && [ $leak = 0 ] && ok "no spooled UID in the listing" || bad "a spooled UID was printed (or none read)"

# limits and usage errors
expect_rc 0 "--limit 1" q --limit 1
has "limit note" "$tmp/out" "(1 shown; --limit N or --state S for more)"
[ "$(grep -cE '^[0-9]+ +(waiting|running|sending|done|retryable|failed|cancelled) ' "$tmp/out")" = 1 ] && ok "--limit 1 prints one row" || bad "--limit 1 rows: $(cat "$tmp/out")"
expect_rc 2 "bad job id" q retry abc
has "bad id message" "$tmp/err" "JOB is a job id"
expect_rc 2 "bad state" q --state available
has "bad state message" "$tmp/err" "unknown state 'available'"
expect_rc 2 "--limit 0" q --limit 0
expect_rc 2 "--limit too big" q --limit 10001
expect_rc 2 "unknown subcommand" q frob
expect_rc 2 "show without JOB" q show
expect_rc 0 "--help" "$agora" queue --help
has "help lists subcommands" "$tmp/out" "retry JOB"
expect_rc 0 "retry --help" "$agora" queue retry --help

# no UID in any output, and the ledger beside the queue verifies
q >"$tmp/all.txt"; q --json >"$tmp/all.json"; q show "$c" >>"$tmp/all.txt"; q show "$c" --json >>"$tmp/all.json"
if grep -q -e "$S1" -e "$S2" -e "3680043" "$tmp/all.txt" "$tmp/all.json" "$tmp/list.txt" "$tmp/list.json"; then bad "a UID was printed"; else ok "no UID printed"; fi
expect_rc 0 "ledger verify beside the queue" "$agora" ledger verify --home "$home"
has "ledger has the one settled run" "$tmp/out" "ledger ok: 1 rows"

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]

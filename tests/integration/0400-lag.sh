#!/usr/bin/env bash
# timeout: 120
# `genq lag` against a real broker, compared with the lag this test sets up itself:
# a committed partition (10 messages, committed at 3), a fully committed one (5 at 5),
# an uncommitted one (4 messages) and an empty uncommitted one, under both
# offsetResetPolicy values, and the replica counts that follow.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=4
for spec in 0:10 1:5 2:4; do
    for i in $(seq "${spec#*:}"); do echo "m$i"; done |
        kcat -P -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" -p "${spec%:*}" 2>/dev/null ||
        fail "kcat produce"
done
parts=$(kcat -L -b "$GENQ_BROKERS" -t "$GENQ_REQUESTS_TOPIC" 2>/dev/null | grep -c 'partition [0-9]')
[ "$parts" -ge 4 ] || fail "topic has $parts partitions"
"$GENQ" replay offsets --to-offset 3 --partition 0 >/dev/null 2>"$T_TMP/off.log" || fail "commit p0: $(cat "$T_TMP/off.log")"
"$GENQ" replay offsets --to-offset 5 --partition 1 >/dev/null 2>>"$T_TMP/off.log" || fail "commit p1"

check() { # policy threshold expected-lags expected-total expected-replicas
    "$GENQ" lag --offset-reset-policy "$1" --lag-threshold "$2" --format json >"$T_TMP/lag.json" ||
        fail "genq lag"
    /usr/bin/python3 - "$T_TMP/lag.json" "$3" "$4" "$5" <<'PY' || fail "genq lag ($1, threshold $2): $(cat "$T_TMP/lag.json")"
import json, sys
d = json.load(open(sys.argv[1]))
lags = [p["lag"] for p in sorted(d["partitions"], key=lambda p: p["partition"])][:4]
assert lags == [int(x) for x in sys.argv[2].split(",")], lags
assert d["total_lag"] == int(sys.argv[3]), d
assert d["replicas"] == int(sys.argv[4]), d
PY
}
# Partition count may exceed 4 if the broker default was used; the extra ones are empty
# and uncommitted: 0 with earliest, 1 each with latest.
extra=$((parts - 4))
check earliest 10 7,0,4,0 11 2
check earliest 3 7,0,4,0 11 4
check latest 10 7,0,1,1 $((9 + extra)) $(((9 + extra + 9) / 10))
note "genq lag matches the set-up lag for committed, uncommitted and empty partitions"

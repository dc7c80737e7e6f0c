#!/usr/bin/env bash
# timeout: 120
# `genq schemas check` holds every current .avsc to its released versions
# (schemas/history/<Name>.v<N>.avsc) by the Avro resolution rules (backward, forward, full):
# the repository's schemas pass; the fixture of a bad change (tests/schemas/compat) and a set
# of changes made here each fail with their reason; compatible changes pass once released.
# No stack needed.
source "$(dirname "$0")/lib.sh"

"$GENQ" schemas check >"$T_TMP/check.txt" 2>&1 || { cat "$T_TMP/check.txt" >&2; fail "the compiled-in schemas do not pass"; }
"$GENQ" schemas check --schemas-from "$GENQ_ROOT/schemas" >"$T_TMP/check.txt" 2>&1 ||
    { cat "$T_TMP/check.txt" >&2; fail "schemas/*.avsc do not pass against schemas/history"; }
grep -q '^ok   GenerationRequest v1 ' "$T_TMP/check.txt" || fail "GenerationRequest v1 not checked: $(cat "$T_TMP/check.txt")"

# A copy of schemas/ (current and history) with one change.
work() {
    rm -rf "$T_TMP/s" && mkdir -p "$T_TMP/s" && cp "$GENQ_ROOT"/schemas/*.avsc "$T_TMP/s/" &&
        cp -r "$GENQ_ROOT/schemas/history" "$T_TMP/s/history"
}
# expect ok|fail LEVEL MESSAGE: runs the check on $T_TMP/s.
expect() {
    local want=$1 level=$2 msg=$3 rc=0
    "$GENQ" schemas check --level "$level" --schemas-from "$T_TMP/s" >"$T_TMP/out.txt" 2>&1 || rc=$?
    if [ "$want" = ok ]; then
        [ "$rc" -eq 0 ] || fail "$case: expected compatible at $level, got exit $rc: $(cat "$T_TMP/out.txt")"
    else
        [ "$rc" -eq 1 ] || fail "$case: expected exit 1 at $level, got $rc: $(cat "$T_TMP/out.txt")"
    fi
    [ -z "$msg" ] || grep -qF -- "$msg" "$T_TMP/out.txt" || fail "$case: no '$msg' in: $(cat "$T_TMP/out.txt")"
}
edit() { t_avsc_variant "$T_TMP/s/GenerationRequest.avsc" "$1"; }

case=fixture-bad-retyped-field
work
cp "$GENQ_ROOT/tests/schemas/compat/bad-retyped-field/GenerationRequest.avsc" "$T_TMP/s/"
expect fail full "FAIL GenerationRequest v1"
expect fail full "steps: the writer's int cannot be read as string"
expect fail backward "not backward compatible"

case=doc-only
work
edit 'fields[4]["doc"] = "A new doc: the fingerprint ignores it."'
expect ok full ""

case=new-optional-field-unreleased
work
edit 'fields.append({"name": "style", "type": ["null", "string"], "default": None})'
expect fail full "release it as history/GenerationRequest.v2.avsc"
case=new-optional-field-released
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect ok full "ok   GenerationRequest v2"
expect ok full "ok   GenerationRequest v1"

case=new-required-field
work
edit 'fields.append({"name": "style", "type": "string"})'
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect fail backward "style: not in the writer's schema, and the reader's has no default"
expect ok forward "forward compatible"

case=removed-required-field
work
edit 'del fields[[f["name"] for f in fields].index("prompt")]'
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect fail forward "prompt: not in the writer's schema"
expect ok backward ""

case=removed-field-with-default
work
edit 'del fields[[f["name"] for f in fields].index("priority")]'
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect ok full ""

case=promotion
work
edit 'fields[[f["name"] for f in fields].index("width")]["type"] = "long"'
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect ok backward ""
expect fail full "width: the writer's long cannot be read as int"

case=renamed-with-alias
work
edit 'f = fields[[f["name"] for f in fields].index("priority")]; f["aliases"] = ["priority"]; f["name"] = "urgency"'
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect ok backward ""

case=job-id-moved
work
edit 'fields.append(fields.pop(0))'
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect fail full "job_id is no longer the first field"

case=record-renamed
work
edit 's["name"] = "ImageRequest"'
cp "$T_TMP/s/GenerationRequest.avsc" "$T_TMP/s/history/GenerationRequest.v2.avsc"
expect fail full "does not match the reader's"

case=enum-symbol-added
work
/usr/bin/python3 - "$T_TMP/s/GenerationCompleted.avsc" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for f in s["fields"]:
    if f["name"] == "status":
        f["type"]["symbols"].append("CANCELLED")
json.dump(s, open(sys.argv[1], "w"), indent=1)
PY
cp "$T_TMP/s/GenerationCompleted.avsc" "$T_TMP/s/history/GenerationCompleted.v2.avsc"
expect ok backward ""
expect fail forward "symbol CANCELLED of enum genq.v1.JobStatus is not in the reader's enum"

case=schema-removed
work
rm "$T_TMP/s/GenerationCompleted.avsc"
expect fail full "released (v1) but its current .avsc is gone"

note "genq schemas check: the repository passes; 1 fixture and 12 generated changes judged as expected"

#!/usr/bin/env bash
# timeout: 300
# The S3 output store against a real S3-compatible server (SeaweedFS's gateway, tests/stack
# --s3): jobs succeed with their outputs as objects s3://bucket/<prefix>/<aa>/<sha256>.<ext>,
# each object holds the recorded sha256 (fetched with a signed request and hashed here, and
# its x-amz-meta-sha256), one output above the part size goes up as a multipart upload, the
# completion events carry presigned URLs that fetch the same bytes without credentials, the
# secret key is in no log, and genq report links the outputs by presigned URLs.
source "$(dirname "$0")/lib.sh"
[ -n "${GENQ_STACK_S3_ENDPOINT:-}" ] || { echo "skipped: no S3 server in the stack (tests/stack up --s3)"; exit 77; }
t_fresh_db
t_fresh_names
export GENQ_OUTPUT_URL="s3://$GENQ_STACK_S3_BUCKET/it/$T_ID" GENQ_S3_ENDPOINT=$GENQ_STACK_S3_ENDPOINT \
    GENQ_S3_REGION=$GENQ_STACK_S3_REGION GENQ_S3_PATH_STYLE=true GENQ_S3_PRESIGN=3600 \
    GENQ_S3_PART_SIZE=5242880
# The credentials as a mounted Secret would give them: files, re-read by the worker.
mkdir -p "$T_TMP/secret"
printf '%s\n' "$GENQ_STACK_S3_ACCESS_KEY" >"$T_TMP/secret/AWS_ACCESS_KEY_ID"
printf '%s' "$GENQ_STACK_S3_SECRET_KEY" >"$T_TMP/secret/AWS_SECRET_ACCESS_KEY"
export GENQ_S3_CREDENTIALS_DIR=$T_TMP/secret

t_produce_n 8 s3-outputs
# One output of several MiB (2048x2048 of the simulator's noise): more than one 5 MiB part.
big=$("$GENQ" produce -p "s3 big" -m sd15.safetensors --width 2048 --height 2048 --steps 2 2>>"$T_TMP/produce.log") ||
    fail "genq produce (big)"
t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 180 "9 jobs" sql_is 9 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'")" = 9 ] ||
    fail "not all succeeded: $(sql "SELECT job_id, error_code, error FROM genq.jobs WHERE status <> 'succeeded'")"
grep -q "outputs go to s3://$GENQ_STACK_S3_BUCKET/it/$T_ID" "$T_TMP/w1.log" || fail "the worker did not say where outputs go"

# Every recorded object: fetched with a signed request, hashed, its metadata read.
sql "SELECT o.uri, o.sha256, o.bytes, o.mime FROM genq.job_outputs o" >"$T_TMP/outputs.txt"
[ "$(wc -l <"$T_TMP/outputs.txt")" -eq 9 ] || fail "expected 9 outputs, got $(wc -l <"$T_TMP/outputs.txt")"
while IFS='|' read -r uri sha bytes mime; do
    key=${uri#s3://$GENQ_STACK_S3_BUCKET/}
    [[ $uri == s3://$GENQ_STACK_S3_BUCKET/it/$T_ID/${sha:0:2}/$sha.png ]] || fail "unexpected URI $uri"
    [ "$mime" = image/png ] || fail "$uri: mime $mime"
    curl -fsS -m 30 --aws-sigv4 "aws:amz:$GENQ_STACK_S3_REGION:s3" \
        --user "$GENQ_STACK_S3_ACCESS_KEY:$GENQ_STACK_S3_SECRET_KEY" -D "$T_TMP/h.txt" \
        -o "$T_TMP/obj" "$GENQ_STACK_S3_ENDPOINT/$GENQ_STACK_S3_BUCKET/$key" || fail "GET $uri"
    [ "$(sha256sum <"$T_TMP/obj" | cut -c1-64)" = "$sha" ] || fail "$uri: the object's sha256 is not the recorded one"
    [ "$(stat -c %s "$T_TMP/obj")" = "$bytes" ] || fail "$uri: size differs from the record"
    grep -qi "^x-amz-meta-sha256: $sha" "$T_TMP/h.txt" || fail "$uri: no x-amz-meta-sha256 $sha"
done <"$T_TMP/outputs.txt"
big_bytes=$(sql "SELECT o.bytes FROM genq.job_outputs o WHERE o.job_id = '$big'")
[ "$big_bytes" -gt 5242880 ] || fail "the big output is only $big_bytes bytes: no multipart upload tested"
# A multipart upload's ETag is "<md5 of the parts' md5s>-<parts>".
big_uri=$(sql "SELECT uri FROM genq.job_outputs WHERE job_id = '$big'")
etag=$(curl -fsS -m 30 -I --aws-sigv4 "aws:amz:$GENQ_STACK_S3_REGION:s3" \
    --user "$GENQ_STACK_S3_ACCESS_KEY:$GENQ_STACK_S3_SECRET_KEY" \
    "$GENQ_STACK_S3_ENDPOINT/$GENQ_STACK_S3_BUCKET/${big_uri#s3://$GENQ_STACK_S3_BUCKET/}" |
    sed -n 's/^[Ee][Tt]ag: *"\{0,1\}\([^"]*\)"\{0,1\}.*/\1/p' | tr -d '\r')
[[ $etag == *-2 ]] || fail "the big output's ETag is $etag, not a 2-part multipart upload's"

# The events' URLs are presigned: they fetch the objects with no credentials at all.
"$GENQ" events --from beginning >"$T_TMP/events.jsonl" 2>"$T_TMP/events.log" || fail "genq events"
/usr/bin/python3 - "$T_TMP/events.jsonl" "$T_TMP/outputs.txt" <<'PY' || fail "the events' URLs do not fetch the objects"
import hashlib, json, sys, urllib.request
recorded = {line.split("|")[1] for line in open(sys.argv[2]) if line.strip()}
seen = 0
for line in open(sys.argv[1]):
    ev = json.loads(line)
    assert ev["status"] == "SUCCEEDED", ev
    for o in ev["outputs"]:
        url = o["uri"]
        assert url.startswith("http://") and "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url, url
        data = urllib.request.urlopen(url, timeout=30).read()
        assert hashlib.sha256(data).hexdigest() == o["sha256"], url
        assert o["sha256"] in recorded
        seen += 1
assert seen == 9, seen
# A URL whose signature is changed is refused: the server checks it.
bad = url[:-1] + ("0" if url[-1] != "0" else "1")
try:
    urllib.request.urlopen(bad, timeout=30)
    raise SystemExit("a tampered presigned URL was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
print(f"{seen} outputs fetched by their presigned URLs")
PY

# The secret is never written to a log, nor shown by --dump-config.
AWS_SECRET_ACCESS_KEY=$GENQ_STACK_S3_SECRET_KEY "$GENQ" worker --dump-config >"$T_TMP/dump.txt" 2>&1 || true
for f in "$T_TMP"/*.log "$T_TMP/dump.txt"; do
    ! grep -qF "$GENQ_STACK_S3_SECRET_KEY" "$f" || fail "the S3 secret key appears in $(basename "$f")"
done

# genq report links S3 outputs by presigned URLs.
"$GENQ" report --since -1h --out "$T_TMP/report.html" >"$T_TMP/report.path" 2>"$T_TMP/report.log" || fail "genq report"
[ "$(grep -o '<img src="http://[^"]*X-Amz-Signature=[0-9a-f]*"' "$T_TMP/report.html" | wc -l)" -eq 9 ] ||
    fail "the report does not show the 9 outputs by presigned URLs"
note "9 jobs, 9 objects checked by sha256 (one multipart, ETag $etag), 9 presigned URLs fetched, report linked"

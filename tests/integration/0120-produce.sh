#!/usr/bin/env bash
# timeout: 240
# Publishing, without a worker: `genq produce -n` (one prepared request; a new job id,
# submitted_at and seed in each message), `genq produce --file` (JSON lines read by the fast
# reader and by jansson, and a bad line), and the C API from a program built here against
# libgenq-producer.a (gq_producer_send, gq_request_prep_* and gq_producer_send_prepared).
# Every message on the topics decodes (python3-avro) to what was asked for, keyed by a job id
# that was printed, with genq's content-type header; --write-messages writes the same bytes.
# Last, -n with --wait follows its jobs through a worker to their completion events.
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
topic=$GENQ_REQUESTS_TOPIC
t0=$(date +%s%3N)

# -n: 3000 requests with consecutive seeds.
GENQ_REQUESTS_TOPIC=$topic.n "$GENQ" produce -p "count" -m sd15.safetensors --width 64 --height 64 \
    --steps 3 --seed 100 -n 3000 >"$T_TMP/n.ids" 2>"$T_TMP/produce-n.log" || fail "genq produce -n"
[ "$(sort -u "$T_TMP/n.ids" | wc -l)" -eq 3000 ] || fail "produce -n printed $(wc -l <"$T_TMP/n.ids") ids"

# --file: plain lines (the fast reader), lines with \u escapes and maps (jansson), one bad line.
/usr/bin/python3 - >"$T_TMP/requests.jsonl" <<'PY'
import json
for i in range(400):
    r = {"prompt": f"line {i} \"q\" caf\u00e9", "width": 64, "height": 64, "steps": 2 + i % 3,
         "seed": i, "cfg": 6.5 if i % 2 else 7}
    if i % 4 == 3:
        r["metadata"] = {"i": str(i)}
        print(json.dumps(r, ensure_ascii=True))
    else:
        print(json.dumps(r, ensure_ascii=False))
    if i == 200:
        print('{"prompt": "bad", "steps": "many"}')
PY
rc=0
GENQ_REQUESTS_TOPIC=$topic.file "$GENQ" produce --file "$T_TMP/requests.jsonl" >"$T_TMP/file.ids" \
    2>"$T_TMP/produce-file.log" || rc=$?
[ "$rc" -eq 65 ] || fail "produce --file with a bad line exited $rc, expected 65"
grep -q "requests.jsonl:202: steps: expected an integer, got a string" "$T_TMP/produce-file.log" ||
    fail "the bad line is not reported: $(cat "$T_TMP/produce-file.log")"
[ "$(sort -u "$T_TMP/file.ids" | wc -l)" -eq 400 ] || fail "produce --file printed $(wc -l <"$T_TMP/file.ids") ids"

# --write-messages: the framed messages, nothing published.
"$GENQ" produce -p "count" -m sd15.safetensors --width 64 --height 64 --steps 3 --seed 100 -n 50 \
    --write-messages "$T_TMP/written.bin" >"$T_TMP/written.ids" 2>>"$T_TMP/produce-n.log" ||
    fail "genq produce --write-messages"

# The C API, as an upstream service links it.
cat >"$T_TMP/capi.c" <<'C'
#include "genq_producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int delivered;

static void on_delivery(const char *job_id, gq_status_t st, const char *err, void *opaque) {
    (void)err;
    (void)opaque;
    if (st == GQ_OK) {
        printf("%s\n", job_id);
        delivered++;
    }
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((call) != GQ_OK) {                                                                     \
            fprintf(stderr, "%s: %s\n", #call, err);                                               \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    char err[512] = "";
    gq_producer_conf_t conf = {.brokers = getenv("GENQ_BROKERS"), .topic = argv[argc - 1],
                               .on_delivery = on_delivery, .create_partitions = 3, .bulk = 1};
    gq_producer_t *p = gq_producer_new(&conf, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gq_request_t req;
    gq_request_init(&req);
    free(req.prompt);
    req.prompt = strdup("c api");
    req.width = req.height = 64;
    req.seed = 7;
    TRY(gq_producer_send(p, &req, err, sizeof(err)));
    gq_request_prep_t *prep = gq_request_prep_new(&req, err, sizeof(err));
    if (!prep)
        return 1;
    for (int i = 0; i < 100; i++) {
        TRY(gq_request_prep_new_job_id(prep, err, sizeof(err)));
        TRY(gq_request_prep_set_int(prep, GQ_REQ_SEED, 1000 + i, err, sizeof(err)));
        TRY(gq_request_prep_set_str(prep, GQ_REQ_PROMPT, i % 2 ? "odd" : "even", err,
                                    sizeof(err)));
        TRY(gq_producer_send_prepared(p, prep, err, sizeof(err)));
    }
    if (gq_request_prep_set_int(prep, GQ_REQ_STEPS, 0, err, sizeof(err)) != GQ_ERR_INVALID)
        return 1;
    size_t failed = 0;
    TRY(gq_producer_flush(p, 30000, &failed, err, sizeof(err)));
    gq_request_prep_destroy(prep);
    gq_request_release(&req);
    gq_producer_destroy(p);
    return delivered == 101 && failed == 0 ? 0 : 1;
}
C
# The flags the build wrote for C services (genq-producer.pc): its librdkafka and the rest.
pc=(env PKG_CONFIG_PATH="${GENQ_BINDIR:-bin}" pkg-config genq-producer)
# shellcheck disable=SC2046 # the flag lists are word-split on purpose
cc -std=c11 -D_GNU_SOURCE -Wall -Werror $("${pc[@]}" --cflags) "$T_TMP/capi.c" \
    $("${pc[@]}" --libs) -o "$T_TMP/capi" 2>"$T_TMP/cc.log" ||
    fail "the C API example does not build: $(cat "$T_TMP/cc.log")"
"$T_TMP/capi" "$topic.capi" >"$T_TMP/capi.ids" 2>"$T_TMP/capi.log" || fail "the C API example failed"

# Everything on the three topics, checked against what was asked for.
for part in n file capi; do
    kcat -C -b "$GENQ_BROKERS" -t "$topic.$part" -e -q -f '%K %k %h %S\n%s' >"$T_TMP/$part.dump" ||
        fail "kcat could not read $topic.$part"
done
t1=$(date +%s%3N)
/usr/bin/python3 - "$T_TMP" "$GENQ_ROOT" "$t0" "$t1" <<'PY' || fail "the published messages are not what was asked for"
import io, json, struct, sys
import avro.io, avro.schema, re
traces = set()
tmp, root, t0, t1 = sys.argv[1], sys.argv[2] or ".", int(sys.argv[3]), int(sys.argv[4])
schema = avro.schema.parse(open(f"{root}/schemas/GenerationRequest.avsc").read())
reader = avro.io.DatumReader(schema)

def decode(value):
    assert value[:2] == b"\xc3\x01", value[:10]
    return reader.read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))

def dump(part):
    data, pos, out = open(f"{tmp}/{part}.dump", "rb").read(), 0, {}
    while pos < len(data):
        nl = data.index(b"\n", pos)
        klen, key, header, vlen = data[pos:nl].decode().split(" ")
        # genq produce starts a trace per request (a W3C traceparent); the C API only when asked
        assert re.fullmatch(r"content-type=application/vnd\.genq\.request\+avro"
                            r"(,traceparent=00-[0-9a-f]{32}-[0-9a-f]{16}-01)?", header), header
        if part != "capi":
            assert "traceparent=" in header, (part, header)
            assert header not in traces, f"two requests share a trace: {header}"
            traces.add(header)
        value = data[nl + 1:nl + 1 + int(vlen)]
        pos = nl + 1 + int(vlen)
        req = decode(value)
        assert req["job_id"] == key and len(key) == int(klen) == 36, (key, req["job_id"])
        assert key not in out, f"{key} twice"
        out[key] = (req, value)
    return out

def ids(name):
    return open(f"{tmp}/{name}.ids").read().split()

n = dump("n")
assert sorted(n) == sorted(ids("n")), "-n: published and printed ids differ"
assert sorted(r["seed"] for r, _ in n.values()) == list(range(100, 3100))
for r, _ in n.values():
    assert (r["prompt"], r["model"], r["width"], r["steps"], r["source"]) == \
        ("count", "sd15.safetensors", 64, 3, "genq-cli"), r
    assert r["job_id"][14] == "4" and r["max_attempts"] is None, r
    ms = r["submitted_at"].timestamp() * 1000
    assert t0 - 1000 <= ms <= t1 + 1000, (ms, t0, t1)

f = dump("file")
assert sorted(f) == sorted(ids("file")), "--file: published and printed ids differ"
want = {}
for line in open(f"{tmp}/requests.jsonl"):
    j = json.loads(line)
    if j["prompt"] != "bad":
        want[j["seed"]] = j
assert len(f) == len(want) == 400
for r, _ in f.values():
    j = want[r["seed"]]
    assert r["prompt"] == j["prompt"] and r["steps"] == j["steps"] and r["cfg"] == j["cfg"], (r, j)
    assert r["metadata"] == j.get("metadata", {}), (r, j)

c = dump("capi")
assert sorted(c) == sorted(ids("capi")) and len(c) == 101
assert sorted(r["seed"] for r, _ in c.values()) == [7] + list(range(1000, 1100))
assert {r["prompt"] for r, _ in c.values()} == {"c api", "odd", "even"}

# --write-messages: framed like the broker got them (same sizes; other ids and times).
data, pos, written = open(f"{tmp}/written.bin", "rb").read(), 0, []
while pos < len(data):
    (klen,) = struct.unpack_from(">I", data, pos)
    key = data[pos + 4:pos + 4 + klen].decode()
    (vlen,) = struct.unpack_from(">I", data, pos + 4 + klen)
    value = data[pos + 8 + klen:pos + 8 + klen + vlen]
    pos += 8 + klen + vlen
    r = decode(value)
    assert r["job_id"] == key
    written.append((r["seed"], len(value), key))
assert [s for s, _, _ in written] == list(range(100, 150)), written[:3]
assert [k for _, _, k in written] == ids("written"), "written and printed ids differ"
sizes = {r["seed"]: len(v) for r, v in n.values()}
assert all(sizes[s] == size for s, size, _ in written), "written and published sizes differ"
print(f"{len(n)} + {len(f)} + {len(c)} messages checked")
PY
# -n with --wait: the jobs are followed to their completion events. The worker creates the
# completed topic; --wait starts once that topic can be read (a reader that creates the topic
# itself can ask for its offsets before its partitions have a leader, and gives up).
t_worker w1 "$GENQ_COMFYUI_URL"
events_readable() { "$GENQ" events --from end >/dev/null 2>&1; }
t_wait 60 "the completed topic to be readable" events_readable
timeout 120 "$GENQ" produce -p "wait" -m sd15.safetensors \
    --width 64 --height 64 --steps 2 -n 4 --wait --wait-timeout 100 >"$T_TMP/wait.ids" \
    2>"$T_TMP/produce-wait.log" || fail "genq produce -n 4 --wait exited $?"
grep -q "4 of 4 jobs finished: 4 succeeded, 0 failed" "$T_TMP/produce-wait.log" ||
    fail "--wait did not see 4 jobs succeed"
[ "$(sort -u "$T_TMP/wait.ids" | wc -l)" -eq 4 ] || fail "produce --wait printed $(wc -l <"$T_TMP/wait.ids") ids"
kill -TERM "$PID_w1"
wait "$PID_w1" || fail "worker exited with $?"
note "-n 3000, --file 400 (+1 bad line), C API 101: every message decoded and matched; -n 4 --wait"

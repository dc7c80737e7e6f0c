/*
 * gq_request_from_json's fast path against its jansson path: on many random JSON lines
 * (valid and broken, with every kind of value, escape, number form and layout), whatever
 * the fast path accepts, jansson accepts too, giving the same request; and the fast path
 * takes the common lines (flat objects of plain strings and numbers) rather than leaving
 * everything to jansson. GENQ_TEST_SEED=<n> replays one run.
 */
#include "genq_schema.h"
#include "schema_int.h"
#include "util.h"
#include "check.h"

#include <jansson.h>
#include <stdlib.h>

static uint64_t rng_state;

static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717u;
}

static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static bool rnd_chance(int percent) { return rnd_below(100) < (uint64_t)percent; }

static const char *rnd_pick(const char *const *v, size_t n) { return v[rnd_below(n)]; }

#define PICK(v) rnd_pick(v, GQ_ARRAY_LEN(v))

static const char *const names[] = {
    "job_id",       "submitted_at", "workflow",   "workflow_json", "prompt",   "negative_prompt",
    "width",        "height",       "seed",       "steps",         "cfg",      "sampler",
    "scheduler",    "model",        "batch_size", "overrides",     "priority", "source",
    "max_attempts", "timeout_s",    "metadata",
};

/* String contents: plain, escaped, unicode (valid and not), control characters. */
static void add_string(gq_buf_t *b) {
    static const char *const pieces[] = {
        "a",
        "lighthouse",
        " ",
        "Z9",
        "\\\"",
        "\\\\",
        "\\/",
        "\\n",
        "\\t",
        "\\b\\f\\r",
        "\\u00e9",
        "\\ud83c\\udf05",
        "\\u0000",
        "\\x",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x8c\x85",
        "\xc3",
        "\xed\xa0\x80",
        "\xc0\xaf",
        "\x01",
        "\x7f",
        "sd15.safetensors",
        "0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        "-",
        ".",
        "euler",
    };
    gq_buf_appends(b, "\"");
    int n = (int)rnd_below(6);
    for (int i = 0; i < n; i++)
        gq_buf_appends(b, PICK(pieces));
    if (rnd_chance(3))
        return; /* unterminated */
    gq_buf_appends(b, "\"");
}

static void add_number(gq_buf_t *b) {
    static const char *const forms[] = {
        "0",
        "-0",
        "1",
        "7",
        "20",
        "512",
        "-5",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "1767225600123",
        "01",
        "-",
        "1.",
        ".5",
        "6.5",
        "7.0",
        "1e2",
        "1E-2",
        "1e400",
        "-1e400",
        "1e-400",
        "0.1e+1",
        "1.5e",
        "100.0",
        "3.25",
        "99999999999999999999999",
        "0x10",
        "+1",
        "1.2.3",
    };
    gq_buf_appends(b, PICK(forms));
}

static void add_value(gq_buf_t *b, int depth) {
    switch (rnd_below(depth > 1 ? 7 : 9)) {
    case 0:
    case 1:
    case 2: add_string(b); break;
    case 3:
    case 4: add_number(b); break;
    case 5: gq_buf_appends(b, rnd_chance(80) ? "null" : "nul"); break;
    case 6: gq_buf_appends(b, rnd_chance(50) ? "true" : "false"); break;
    case 7: /* an object: maps, and nonsense elsewhere */
        gq_buf_appends(b, "{");
        for (int i = 0, n = (int)rnd_below(3); i < n; i++) {
            if (i)
                gq_buf_appends(b, ", ");
            gq_buf_appendf(b, "\"%s\": ", rnd_chance(50) ? "3.denoise" : "k");
            add_value(b, depth + 1);
        }
        gq_buf_appends(b, "}");
        break;
    default: gq_buf_appends(b, "[1, \"a\"]"); break;
    }
}

static const char *ws(void) {
    static const char *const w[] = {"", "", "", " ", "  ", "\t", "\n", "\r\n", " \t "};
    return PICK(w);
}

/* A line that is usually a valid flat request, and often a little broken. */
static char *rnd_line(bool plain) {
    gq_buf_t b;
    gq_buf_init(&b, 1 << 20);
    gq_buf_appendf(&b, "%s{%s", ws(), ws());
    int n = (int)rnd_below(10);
    bool prompt = false;
    for (int i = 0; i < n || !prompt; i++) {
        const char *name = i == n ? "prompt" : rnd_chance(3) ? "promt" : PICK(names);
        prompt = prompt || strcmp(name, "prompt") == 0;
        if (i)
            gq_buf_appendf(&b, "%s,%s", ws(), ws());
        gq_buf_appendf(&b, "\"%s\"%s:%s", name, ws(), ws());
        if (plain) {
            /* What the fast path is for: a well-typed plain value. */
            if (strcmp(name, "cfg") == 0)
                gq_buf_appends(&b, rnd_chance(50) ? "6.5" : "7");
            else if (strstr("width height steps batch_size priority max_attempts timeout_s "
                            "submitted_at seed",
                            name))
                gq_buf_appendf(&b, "%d", 8 * (int)(1 + rnd_below(100)));
            else if (strcmp(name, "overrides") == 0 || strcmp(name, "metadata") == 0)
                gq_buf_appends(&b, "{}");
            else if (strcmp(name, "model") == 0 && rnd_chance(30))
                gq_buf_appends(&b, "null");
            else
                gq_buf_appendf(&b, "\"%s\"", rnd_chance(30) ? "\\\"q\\\" \xc3\xa9" : "x");
        } else {
            add_value(&b, 0);
        }
    }
    gq_buf_appendf(&b, "%s}%s", ws(), rnd_chance(3) ? " x" : rnd_chance(3) ? "}" : ws());
    char *line = gq_buf_detach(&b, NULL);
    if (!plain && rnd_chance(5)) /* cut short */
        line[rnd_below(strlen(line))] = '\0';
    return line;
}

static json_t *kv_json(const gq_kv_t *kv, size_t cnt) {
    json_t *o = json_object();
    for (size_t i = 0; i < cnt; i++)
        json_object_set_new(o, kv[i].key, json_string(kv[i].value));
    return o;
}

static json_t *str_json(const char *s) { return s ? json_string(s) : json_null(); }

/* Every field; job_id and submitted_at only when the line sets them (else they are new). */
static json_t *req_json(const gq_request_t *r, bool id, bool at) {
    json_t *j = json_object();
    if (id)
        json_object_set_new(j, "job_id", json_string(r->job_id));
    if (at)
        json_object_set_new(j, "submitted_at", json_integer(r->submitted_at));
    json_object_set_new(j, "workflow", str_json(r->workflow));
    json_object_set_new(j, "workflow_json", str_json(r->workflow_json));
    json_object_set_new(j, "prompt", str_json(r->prompt));
    json_object_set_new(j, "negative_prompt", str_json(r->negative_prompt));
    json_object_set_new(j, "width", json_integer(r->width));
    json_object_set_new(j, "height", json_integer(r->height));
    json_object_set_new(j, "seed", json_integer(r->seed));
    json_object_set_new(j, "steps", json_integer(r->steps));
    uint64_t bits;
    memcpy(&bits, &r->cfg, sizeof(bits));
    json_object_set_new(j, "cfg_bits", json_integer((json_int_t)bits));
    json_object_set_new(j, "sampler", str_json(r->sampler));
    json_object_set_new(j, "scheduler", str_json(r->scheduler));
    json_object_set_new(j, "model", str_json(r->model));
    json_object_set_new(j, "batch_size", json_integer(r->batch_size));
    json_object_set_new(j, "overrides", kv_json(r->overrides, r->overrides_cnt));
    json_object_set_new(j, "priority", json_integer(r->priority));
    json_object_set_new(j, "source", str_json(r->source));
    json_object_set_new(j, "max_attempts", json_integer(r->max_attempts));
    json_object_set_new(j, "timeout_s", json_integer(r->timeout_s));
    json_object_set_new(j, "metadata", kv_json(r->metadata, r->metadata_cnt));
    return j;
}

/* One line through both paths; returns whether the fast path took it. */
static bool compare_line(const char *line, int *disagreements) {
    gq_request_t fast, slow;
    char err[512];
    size_t len = strlen(line);
    bool took = gq_request_from_json_fast(line, len, &fast);
    gq_status_t st = gq_request_from_json_jansson(line, len, &slow, err, sizeof(err));
    if (took) {
        bool id = strstr(line, "\"job_id\"") != NULL, at = strstr(line, "\"submitted_at\"");
        json_t *a = req_json(&fast, id, at), *b = req_json(&slow, id, at);
        bool same = st == GQ_OK && json_equal(a, b);
        if (!same) {
            char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);
            fprintf(stderr, "  line: %s\n  fast:    %s\n  jansson: %d %s %s\n", line, sa, st,
                    st == GQ_OK ? "" : err, sb);
            free(sa);
            free(sb);
            (*disagreements)++;
        }
        CHECK(same);
        CHECK(gq_uuid_valid(fast.job_id) || id);
        json_decref(a);
        json_decref(b);
        gq_request_release(&fast);
    }
    gq_request_release(&slow);
    return took;
}

static void test_known_lines(void) {
    static const char *const taken[] = {
        "{\"prompt\": \"a\"}",
        " {\"prompt\":\"a\" , \"seed\" : 9223372036854775807 }\r\n",
        "{\"steps\": 4, \"prompt\": \"x \\\"y\\\" \\\\ \\/ \\n\", \"cfg\": 6.5, \"model\": null}",
        "{\"prompt\": \"caf\xc3\xa9 \xf0\x9f\x8c\x85\", \"max_attempts\": null, \"timeout_s\": 60}",
        "{\"job_id\": \"0b7a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b\", \"prompt\": \"\", \"cfg\": -0}",
    };
    static const char *const left[] = {
        "{}",
        "{\"prompt\": \"\\u00e9\"}",
        "{\"prompt\": \"a\", \"prompt\": \"b\"}",
        "{\"prompt\": \"a\", \"promt\": 1}",
        "{\"prompt\": \"a\", \"overrides\": {}}",
        "{\"prompt\": \"a\", \"width\": 1.0}",
        "{\"prompt\": \"a\", \"width\": 2147483648}",
        "{\"prompt\": \"a\", \"seed\": 9223372036854775808}",
        "{\"prompt\": \"a\", \"max_attempts\": 0}",
        "{\"prompt\": \"a\", \"cfg\": 1e400}",
        "{\"prompt\": \"a\", \"steps\": 01}",
        "{\"prompt\": \"a\"} x",
        "{\"prompt\": \"a\",}",
        "{\"prompt\": \"\xc3\"}",
        "{\"prompt\": \"a\x01\"}",
        "[\"prompt\"]",
        "{\"prompt\": \"a\"",
    };
    int disagreements = 0;
    for (size_t i = 0; i < GQ_ARRAY_LEN(taken); i++) {
        bool took = compare_line(taken[i], &disagreements);
        if (!took)
            fprintf(stderr, "  not taken: %s\n", taken[i]);
        CHECK(took);
    }
    for (size_t i = 0; i < GQ_ARRAY_LEN(left); i++) {
        bool took = compare_line(left[i], &disagreements);
        if (took)
            fprintf(stderr, "  taken: %s\n", left[i]);
        CHECK(!took);
    }
    CHECK_INT(disagreements, 0);
}

static void test_random_lines(int rounds) {
    int taken = 0, plain_taken = 0, disagreements = 0;
    for (int i = 0; i < rounds; i++) {
        bool plain = rnd_chance(30);
        char *line = rnd_line(plain);
        bool took = compare_line(line, &disagreements);
        taken += took;
        plain_taken += plain && took;
        free(line);
    }
    fprintf(stderr, "  %d random lines: the fast path took %d (%d plain ones), %d disagreements\n",
            rounds, taken, plain_taken, disagreements);
    CHECK_INT(disagreements, 0);
    CHECK(plain_taken > rounds / 10); /* the fast path does take the common lines */
}

int main(void) {
    const char *seed_env = getenv("GENQ_TEST_SEED"), *rounds_env = getenv("GENQ_TEST_ROUNDS");
    int64_t seed = 0, rounds = 20000;
    if (!seed_env || gq_parse_i64(seed_env, 1, INT64_MAX, &seed) != GQ_OK)
        seed = (int64_t)(gq_random_u64() >> 1) | 1;
    if (rounds_env)
        gq_parse_i64(rounds_env, 1, 100000000, &rounds);
    rng_state = (uint64_t)seed;
    fprintf(stderr, "  GENQ_TEST_SEED=%lld\n", (long long)seed);
    test_known_lines();
    test_random_lines((int)rounds);
    gq_schema_shutdown();
    return CHECK_DONE("test_schema_json");
}

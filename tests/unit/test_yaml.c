/* The YAML subset reader (lib/yaml.h): what Kubernetes manifests use is read, the rest is
 * refused with its line, never misread. */
#include "yaml.h"
#include "check.h"

#include <dirent.h>

/* Parses text and compares the documents, as compact JSON, with want (NULL: must fail
 * with an error containing err). */
static void check_yaml(const char *text, const char *want, const char *err) {
    char e[256] = "";
    json_t *d = gq_yaml_parse(text, strlen(text), e, sizeof(e));
    char *got = d ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    if (want) {
        CHECK_STR(got, want);
        if (!d)
            fprintf(stderr, "  error: %s\n", e);
    } else {
        CHECK(d == NULL && strstr(e, err) != NULL);
        if (d || !strstr(e, err))
            fprintf(stderr, "  parsed %s, error \"%s\", wanted \"%s\"\n", got ? got : "-", e, err);
    }
    free(got);
    json_decref(d);
}

static void test_subset(void) {
    check_yaml("a: 1\nb: x y  # comment\n", "[{\"a\":\"1\",\"b\":\"x y\"}]", NULL);
    check_yaml("# head\n\na:\n  b:\n    c: \"q # not a comment\"\n  d: 'it''s'\n",
               "[{\"a\":{\"b\":{\"c\":\"q # not a comment\"},\"d\":\"it's\"}}]", NULL);
    check_yaml("s:\n- a\n- b: 1\n  c: 2\n-\n  - x\n- - y\nt: ~\nu:\nv: {}\nw: []\n",
               "[{\"s\":[\"a\",{\"b\":\"1\",\"c\":\"2\"},[\"x\"],[\"y\"]],\"t\":null,\"u\":null,"
               "\"v\":{},\"w\":[]}]",
               NULL);
    check_yaml("  s:\n    - k: v\n      l:\n        - 1\n    - k: w\n",
               "[{\"s\":[{\"k\":\"v\",\"l\":[\"1\"]},{\"k\":\"w\"}]}]", NULL);
    check_yaml("u: http://h:80/a#b\nd: \"\\u00e9\\t\\\"\\\\\"\n\"q k\": v\n",
               "[{\"u\":\"http://h:80/a#b\",\"d\":\"é\\t\\\"\\\\\",\"q k\":\"v\"}]", NULL);
    check_yaml("a: |\n  one\n    two\n\n  three # kept\nb: >-\n  x\n  y\n",
               "[{\"a\":\"one\\n  two\\nthree # kept\\n\",\"b\":\"x y\"}]", NULL);
    check_yaml("---\na: 1\n---\n# empty\n---\nb: 2\n...\n", "[{\"a\":\"1\"},null,{\"b\":\"2\"}]",
               NULL);
    check_yaml("a: b\r\nc: d\r\n", "[{\"a\":\"b\",\"c\":\"d\"}]", NULL);
    check_yaml("", "[null]", NULL);
    /* refused, with the line */
    check_yaml("a:\n\tb: 1\n", NULL, "line 2: a tab in the indentation");
    check_yaml("a: [\"ALL\", b , 'c # d']\nb: {k: v, \"l\": [1, {}], m: }\n- [x]\n", NULL,
               "line 3: bad indentation");
    check_yaml("a: [\"ALL\", b , 'c # d']  # e\nb: {k: v, \"l\": [1, {}], m: }\nc: [a,]\n",
               "[{\"a\":[\"ALL\",\"b\",\"c # d\"],\"b\":{\"k\":\"v\",\"l\":[\"1\",{}],\"m\":null},"
               "\"c\":[\"a\"]}]",
               NULL);
    check_yaml("s:\n- {a: 1, b: [2]}\n", "[{\"s\":[{\"a\":\"1\",\"b\":[\"2\"]}]}]", NULL);
    check_yaml("a: [1, 2\n", NULL, "line 1: bad flow collection");
    check_yaml("a: [1] x\n", NULL, "line 1: unexpected text after [1]: x");
    check_yaml("a: {b}\n", NULL, "line 1: expected key: value in a flow mapping");
    check_yaml("a: [x, {b: \"c\n", NULL, "line 1: a quoted scalar must end on its line");
    static const char nul[] = "a: b\nc: \"d\0e\"\n";
    char e[128];
    CHECK(gq_yaml_parse(nul, sizeof(nul) - 1, e, sizeof(e)) == NULL);
    CHECK_STR(e, "line 2: a NUL byte");
    check_yaml("a: &x 1\nb: *x\n", NULL, "line 1: anchors, aliases and tags");
    check_yaml("a: !!str 1\n", NULL, "tags");
    check_yaml("a: b\n  c\n", NULL, "line 2: bad indentation");
    check_yaml("a:\n    b: 1\n  c: 2\n", NULL, "line 3: bad indentation");
    check_yaml("a: 1\na: 2\n", NULL, "line 2: duplicate key a");
    check_yaml("a: \"open\n  close\"\n", NULL, "line 1: a quoted scalar must end on its line");
    check_yaml("a: 1\njust text\n", NULL, "line 2: expected \"key: value\"");
    check_yaml("a:\n- 1\nb: 2\n- 3\n", NULL, "line 4: bad indentation");
    check_yaml("--- !tag\n", NULL, "content after ---");
}

/* Every manifest under k8s/base parses. */
static void test_manifests(void) {
    char dir[4096], path[4352], err[512];
    CHECK(check_find_src("k8s/base", dir, sizeof(dir)));
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        json_t *docs = gq_yaml_load(path, err, sizeof(err));
        CHECK(docs != NULL && json_array_size(docs) >= 1);
        if (!docs)
            fprintf(stderr, "  %s\n", err);
        json_decref(docs);
        n++;
    }
    if (d)
        closedir(d);
    CHECK(n >= 5);
    snprintf(path, sizeof(path), "%s/keda-scaledobject.yaml", dir);
    json_t *docs = gq_yaml_load(path, err, sizeof(err)), *so = json_array_get(docs, 0);
    json_t *md = json_object_get(
        json_array_get(json_object_get(json_object_get(so, "spec"), "triggers"), 0), "metadata");
    CHECK_STR(json_string_value(json_object_get(md, "lagThreshold")), "5");
    CHECK_STR(json_string_value(json_object_get(md, "offsetResetPolicy")), "earliest");
    json_decref(docs);
}

int main(void) {
    test_subset();
    test_manifests();
    return CHECK_DONE("test_yaml");
}

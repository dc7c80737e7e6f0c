/*
 * CancelRequest: the mapping between gq_cancel_t and the Avro record, its checks (a cancel
 * read from Kafka is untrusted), and its JSON form.
 */
#include "schema_int.h"
#include "avro_check.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void gq_cancel_init(gq_cancel_t *c) { memset(c, 0, sizeof(*c)); }

void gq_cancel_release(gq_cancel_t *c) {
    free(c->reason);
    free(c->requested_by);
    free(c->source);
    gq_cancel_init(c);
}

/* A string field: at most max bytes of UTF-8 without NUL (NULL is ""). */
static gq_status_t cancel_check_str(const char *field, const char *s, size_t max, char *errstr,
                                    size_t errstr_size) {
    if (!s)
        return GQ_OK;
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        gq_errf(errstr, errstr_size, "%s: longer than %zu bytes", field, max);
        return GQ_ERR_INVALID;
    }
    if (!gq_utf8_valid(s, n)) {
        gq_errf(errstr, errstr_size, "%s: not UTF-8", field);
        return GQ_ERR_INVALID;
    }
    return GQ_OK;
}

gq_status_t gq_cancel_validate(const gq_cancel_t *c, char *errstr, size_t errstr_size) {
    if (!gq_uuid_valid(c->job_id)) {
        gq_errf(errstr, errstr_size, "job_id: \"%.40s\" is not a canonical lowercase uuid",
                c->job_id);
        return GQ_ERR_INVALID;
    }
    if (c->requested_at < 0) {
        gq_errf(errstr, errstr_size, "requested_at: %lld is negative", (long long)c->requested_at);
        return GQ_ERR_INVALID;
    }
    gq_status_t st =
        cancel_check_str("reason", c->reason, GQ_CANCEL_REASON_MAX, errstr, errstr_size);
    if (st == GQ_OK)
        st = cancel_check_str("requested_by", c->requested_by, GQ_CANCEL_BY_MAX, errstr,
                              errstr_size);
    if (st == GQ_OK)
        st = cancel_check_str("source", c->source, GQ_CANCEL_SOURCE_MAX, errstr, errstr_size);
    return st;
}

gq_status_t gq_cancel_encode(const gq_cancel_t *c, gq_buf_t *out, char *errstr,
                             size_t errstr_size) {
    avro_value_t v;
    gq_status_t st = gq_schema_value_new(GQ_SCHEMA_CANCEL, &v, errstr, errstr_size);
    if (st != GQ_OK)
        return st;
    gq_av_t a = {GQ_OK, errstr, errstr_size};
    gq_av_set_str(&a, &v, "job_id", c->job_id);
    gq_av_set_long(&a, &v, "requested_at", c->requested_at);
    gq_av_set_str(&a, &v, "reason", c->reason ? c->reason : "");
    gq_av_set_str(&a, &v, "requested_by", c->requested_by ? c->requested_by : "");
    gq_av_set_opt_str(&a, &v, "source", c->source);
    st = a.st == GQ_OK ? gq_schema_write(GQ_SCHEMA_CANCEL, &v, out, errstr, errstr_size) : a.st;
    avro_value_decref(&v);
    return st;
}

gq_status_t gq_cancel_decode(const void *data, size_t len, gq_cancel_t *c, char *errstr,
                             size_t errstr_size) {
    char id[37];
    avro_value_t v;
    gq_cancel_init(c);
    gq_status_t st = gq_schema_read(GQ_SCHEMA_CANCEL, data, len, &v, id, errstr, errstr_size);
    if (st == GQ_OK) {
        gq_av_t a = {GQ_OK, errstr, errstr_size};
        gq_av_get_strbuf(&a, &v, "job_id", c->job_id, sizeof(c->job_id));
        c->requested_at = gq_av_get_long(&a, &v, "requested_at");
        c->reason = gq_av_get_str(&a, &v, "reason");
        c->requested_by = gq_av_get_str(&a, &v, "requested_by");
        c->source = gq_av_get_opt_str(&a, &v, "source");
        avro_value_decref(&v);
        st = a.st;
    }
    if (st != GQ_OK) {
        gq_cancel_release(c);
        gq_strlcpy(c->job_id, gq_uuid_valid(id) ? id : "", sizeof(c->job_id));
    }
    return st;
}

gq_status_t gq_cancel_to_json(const gq_cancel_t *c, gq_buf_t *out) {
    const char *strs[3] = {c->reason ? c->reason : "", c->requested_by ? c->requested_by : "",
                           c->source};
    for (size_t i = 0; i < GQ_ARRAY_LEN(strs); i++)
        if (strs[i] && !gq_utf8_valid(strs[i], strlen(strs[i])))
            return GQ_ERR_INVALID;
    json_t *j = json_pack("{s:s, s:I, s:s, s:s}", "job_id", c->job_id, "requested_at",
                          (json_int_t)c->requested_at, "reason", strs[0], "requested_by", strs[1]);
    if (!j)
        return GQ_ERR_NOMEM;
    int rc = json_object_set_new(j, "source", c->source ? json_string(c->source) : json_null());
    char *s = rc == 0 ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return GQ_ERR_NOMEM;
    gq_status_t st = gq_buf_appends(out, s);
    free(s);
    return st;
}

/* The recorder's private state and helpers, shared by recorder.c and recorder_outbox.c. */
#ifndef GQ_RECORDER_INT_H
#define GQ_RECORDER_INT_H

#include "pgq.h"
#include "recorder.h"

#include <jansson.h>

struct gq_recorder {
    gq_pgq_t *q;
};

/** Texts a statement's parameters point to, kept until it is sent. */
typedef struct rec_texts {
    char *s[8];
    size_t cnt;
} rec_texts_t;

void rec_texts_release(rec_texts_t *t);
const char *rec_text_keep(rec_texts_t *t, char *s);
const char *rec_json_keep(rec_texts_t *t, json_t *v);

/** Sends the statement (res NULL: its result comes back through the pipeline with kind and
 * tag), or runs it and waits (res non-NULL: the caller's). */
gq_status_t rec_run(gq_recorder_t *r, const char *sql, const gq_pg_params_t *p, gq_rec_kind_t kind,
                    uint64_t tag, PGresult **res, char *errstr, size_t errstr_size);

#endif

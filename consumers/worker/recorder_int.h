/* The recorder's private state, shared by recorder.c and recorder_outbox.c. */
#ifndef GQ_RECORDER_INT_H
#define GQ_RECORDER_INT_H

#include "pg.h"
#include "recorder.h"

struct gq_recorder {
    gq_pg_t *pg;
};

/** Inserts outbox rows inside the caller's transaction; ids (may be NULL) get their ids. */
gq_status_t rec_outbox_insert(gq_recorder_t *r, const gq_outbox_msg_t *msgs, size_t cnt,
                              const char *claimer, int64_t *ids, char *e, size_t e_size);

#endif

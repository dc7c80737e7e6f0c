/* The offset tracker (see offsets.h). */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

void gq_offsets_init(gq_offsets_t *o) {
    memset(o, 0, sizeof(*o));
    for (size_t l = 0; l < GQ_LANES_MAX; l++)
        for (size_t i = 0; i < GQ_OFFSETS_MAX_PARTS; i++)
            o->parts[l][i].next_commit = o->parts[l][i].taken_next = -1;
}

void gq_offsets_release(gq_offsets_t *o) {
    for (size_t l = 0; l < GQ_LANES_MAX; l++)
        for (size_t i = 0; i < GQ_OFFSETS_MAX_PARTS; i++)
            free(o->parts[l][i].flight);
    gq_offsets_init(o);
}

static gq_offsets_part_t *off_part(const gq_offsets_t *o, int lane, int32_t partition) {
    if (lane < 0 || lane >= GQ_LANES_MAX || partition < 0 || partition >= GQ_OFFSETS_MAX_PARTS)
        return NULL;
    return (gq_offsets_part_t *)&o->parts[lane][partition];
}

bool gq_offsets_assign(gq_offsets_t *o, int lane, int32_t partition, int64_t start) {
    gq_offsets_part_t *p = off_part(o, lane, partition);
    if (!p)
        return false;
    p->assigned = true;
    p->flight_cnt = 0;
    p->next_commit = start >= 0 ? start : -1;
    p->taken_next = start >= 0 ? start : -1;
    return true;
}

void gq_offsets_revoke(gq_offsets_t *o, int lane, int32_t partition) {
    gq_offsets_part_t *p = off_part(o, lane, partition);
    if (!p)
        return;
    p->assigned = false;
    p->flight_cnt = 0;
    p->next_commit = p->taken_next = -1;
}

bool gq_offsets_assigned(const gq_offsets_t *o, int lane, int32_t partition) {
    const gq_offsets_part_t *p = off_part(o, lane, partition);
    return p && p->assigned;
}

/* Index of the first element >= offset. */
static size_t off_lower(const gq_offsets_part_t *p, int64_t offset) {
    size_t lo = 0, hi = p->flight_cnt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->flight[mid] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

gq_status_t gq_offsets_take(gq_offsets_t *o, int lane, int32_t partition, int64_t offset) {
    gq_offsets_part_t *p = off_part(o, lane, partition);
    if (!p || !p->assigned || offset < 0)
        return GQ_ERR_INVALID;
    size_t at = off_lower(p, offset);
    if (at < p->flight_cnt && p->flight[at] == offset)
        return GQ_OK; /* taken twice (a seek back): one entry is enough */
    if (p->flight_cnt == p->flight_cap) {
        size_t cap = p->flight_cap ? p->flight_cap * 2 : 64;
        int64_t *f = realloc(p->flight, cap * sizeof(*f));
        if (!f)
            return GQ_ERR_NOMEM;
        p->flight = f;
        p->flight_cap = cap;
    }
    memmove(&p->flight[at + 1], &p->flight[at], (p->flight_cnt - at) * sizeof(*p->flight));
    p->flight[at] = offset;
    p->flight_cnt++;
    if (p->next_commit < 0)
        p->next_commit = offset;
    if (offset + 1 > p->taken_next)
        p->taken_next = offset + 1;
    return GQ_OK;
}

/* The oldest offset in flight, or the one after the last taken. */
static int64_t off_next(const gq_offsets_part_t *p) {
    return p->flight_cnt ? p->flight[0] : p->taken_next;
}

int64_t gq_offsets_done(gq_offsets_t *o, int lane, int32_t partition, int64_t offset) {
    gq_offsets_part_t *p = off_part(o, lane, partition);
    if (!p || !p->assigned)
        return -1;
    size_t at = off_lower(p, offset);
    if (at < p->flight_cnt && p->flight[at] == offset) {
        memmove(&p->flight[at], &p->flight[at + 1], (p->flight_cnt - at - 1) * sizeof(*p->flight));
        p->flight_cnt--;
    }
    int64_t next = off_next(p);
    if (next <= p->next_commit)
        return -1;
    p->next_commit = next;
    return next;
}

int64_t gq_offsets_next_if_done(const gq_offsets_t *o, int lane, int32_t partition,
                                int64_t offset) {
    const gq_offsets_part_t *p = off_part(o, lane, partition);
    if (!p || !p->assigned)
        return -1;
    /* The oldest in flight other than `offset`. */
    int64_t next = p->taken_next;
    for (size_t i = 0; i < p->flight_cnt; i++)
        if (p->flight[i] != offset) {
            next = p->flight[i];
            break;
        }
    /* 0 is not "nothing to store": to the recorder it means offset + 1. */
    return next > 0 ? next : -1;
}

size_t gq_offsets_in_flight(const gq_offsets_t *o, int lane, int32_t partition) {
    const gq_offsets_part_t *p = off_part(o, lane, partition);
    return p ? p->flight_cnt : 0;
}

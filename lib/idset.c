#include "idset.h"

#include <stdlib.h>
#include <string.h>

static size_t idset_hash(const char *id) {
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211u;
    return h;
}

void gq_idset_init(gq_idset_t *s) { memset(s, 0, sizeof(*s)); }

void gq_idset_release(gq_idset_t *s) {
    free(s->keys);
    free(s->state);
    memset(s, 0, sizeof(*s));
}

static size_t idset_slot(const gq_idset_t *s, const char *id) {
    size_t i = idset_hash(id) & (s->cap - 1);
    while (s->state[i] && strcmp(s->keys[i], id) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static gq_status_t idset_grow(gq_idset_t *s) {
    gq_idset_t n = {.cap = s->cap ? s->cap * 2 : 64};
    n.keys = calloc(n.cap, sizeof(*n.keys));
    n.state = calloc(n.cap, 1);
    if (!n.keys || !n.state) {
        free(n.keys);
        free(n.state);
        return GQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->state[i])
            continue;
        size_t j = idset_slot(&n, s->keys[i]);
        memcpy(n.keys[j], s->keys[i], 37);
        n.state[j] = s->state[i];
        n.cnt++;
    }
    gq_idset_release(s);
    *s = n;
    return GQ_OK;
}

gq_status_t gq_idset_add(gq_idset_t *s, const char *id, unsigned char state) {
    if ((s->cnt + 1) * 2 > s->cap && idset_grow(s) != GQ_OK)
        return GQ_ERR_NOMEM;
    size_t i = idset_slot(s, id);
    if (!s->state[i]) {
        strncpy(s->keys[i], id, 36);
        s->keys[i][36] = '\0';
        s->state[i] = state ? state : 1;
        s->cnt++;
    }
    return GQ_OK;
}

unsigned char *gq_idset_get(const gq_idset_t *s, const char *id) {
    if (!s->cap)
        return NULL;
    size_t i = idset_slot(s, id);
    return s->state[i] ? &s->state[i] : NULL;
}

#include "embedded.h"

#include <string.h>

const gq_embedded_t *gq_embedded_find(const char *name) {
    for (size_t i = 0; i < gq_embedded_count; i++)
        if (strcmp(gq_embedded_files[i].name, name) == 0)
            return &gq_embedded_files[i];
    return NULL;
}

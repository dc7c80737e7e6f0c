#include "gq.h"

#ifndef GQ_VERSION
#define GQ_VERSION "unknown"
#endif

/* Only this file is rebuilt when the version changes (see the Makefile). */
const char *gq_version(void) { return GQ_VERSION; }

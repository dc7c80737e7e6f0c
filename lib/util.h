/**
 * @file util.h
 * @brief Small helpers: checked number parsing, time, uuids, hashing, names.
 */
#ifndef GQ_UTIL_H
#define GQ_UTIL_H

#include "gq.h"

#include <stdbool.h>

/** Parses a whole string as a base-10 integer in [min, max]; no trailing junk. */
gq_status_t gq_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/** Parses a whole string as a finite double. */
gq_status_t gq_parse_double(const char *s, double *out);
/** Parses "true/false/1/0/yes/no/on/off". */
gq_status_t gq_parse_bool(const char *s, bool *out);

/** Milliseconds since the epoch (wall clock). */
int64_t gq_now_ms(void);
/** Milliseconds from a monotonic clock, for durations and deadlines. */
int64_t gq_mono_ms(void);
/** Sleeps, returning early on a signal. */
void gq_sleep_ms(int64_t ms);

/**
 * Random bytes from the kernel's generator (getrandom), drawn a block at a time into a
 * per-thread pool; a child made by fork() never reuses its parent's bytes. Thread-safe.
 */
gq_status_t gq_random_bytes(void *buf, size_t len);
/** 64 random bits from gq_random_bytes (a clock-derived value if the kernel fails). */
uint64_t gq_random_u64(void);
/** Writes a random (v4) uuid, canonical lowercase, into out[37]: 122 bits of
 * gq_random_bytes. Fails only if the kernel's generator does. */
gq_status_t gq_uuid_v4(char out[37]);
/** True if s is a canonical lowercase 8-4-4-4-12 hex uuid. */
bool gq_uuid_valid(const char *s);

/** A W3C Trace Context traceparent: "00-" 32 hex trace id "-" 16 hex parent id "-" 2 hex flags
 * (lowercase, neither id all zeros); len is the header value's length. */
#define GQ_TRACEPARENT_LEN 55
bool gq_traceparent_valid(const char *s, size_t len);
/** A new trace: a random trace id and parent id, flags 01 (sampled). */
gq_status_t gq_traceparent_new(char out[GQ_TRACEPARENT_LEN + 1]);
/** Parses 16 raw bytes (Avro "fixed" uuid or bytes) into canonical text. */
void gq_uuid_format(const unsigned char raw[16], char out[37]);

/** SHA-256 of a buffer, as 64 lowercase hex characters plus NUL. */
void gq_sha256_hex(const void *data, size_t len, char out[65]);

/**
 * True if name is safe to use as one path component we create: 1..max bytes of
 * [A-Za-z0-9._-], not starting with '.'. Names from messages or from ComfyUI replies
 * must pass this before they reach the filesystem.
 */
bool gq_name_safe(const char *name, size_t max);

/** Copies src into dst (size dst_size), always NUL-terminated; returns GQ_ERR_TOOBIG if cut. */
gq_status_t gq_strlcpy(char *dst, const char *src, size_t dst_size);

/** Reads a whole file of at most max bytes into *out (owned, NUL-terminated, *len bytes
 * before the NUL). GQ_ERR_TOOBIG when larger; errstr names the file. */
gq_status_t gq_read_file(const char *path, size_t max, char **out, size_t *len, char *errstr,
                         size_t errstr_size);

#endif

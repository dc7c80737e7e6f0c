/**
 * @file yaml.h
 * @brief A reader for the subset of YAML that Kubernetes manifests are written in
 * (kubectl, kustomize and hand-written ScaledObjects), turned into jansson values.
 *
 * Read: documents (`---`), block mappings and block sequences (including `- key: value`
 * items and a sequence at its parent key's indentation), plain, 'single' and "double"
 * quoted scalars, flow collections on one line (`["ALL"]`, `{a: 1}`), block scalars
 * (`|`, `>`: the lines are joined, blank lines dropped) and `#` comments. Every scalar
 * becomes a JSON string (the caller decides what "5" or "true" means), except `~`,
 * `null` and a missing value, which become JSON null.
 *
 * Refused with "line N: why" rather than misread: tabs in indentation, anchors, aliases,
 * tags, scalars or flow collections over several lines, duplicate keys, bad indentation.
 * libyaml would read all of YAML, but it would be one more library in the image for one
 * diagnostic command, and manifests do not need the rest.
 */
#ifndef GQ_YAML_H
#define GQ_YAML_H

#include "gq.h"

#include <jansson.h>

/**
 * Parses text (len bytes, need not be NUL-terminated) into a new JSON array with one
 * element per document (an empty document is null). Returns NULL on error, with errstr
 * "line N: why".
 */
json_t *gq_yaml_parse(const char *text, size_t len, char *errstr, size_t errstr_size);

/** Reads and parses a file; errstr names the file. */
json_t *gq_yaml_load(const char *path, char *errstr, size_t errstr_size);

#endif

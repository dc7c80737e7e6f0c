/* genq: the command dispatcher. Each subcommand lives beside the code it drives
 * (producers/, consumers/, migrations/); this file only picks one. */
#include "cfg.h"
#include "commands.h"
#include "gq.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

typedef struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cmd_t;

static const cmd_t commands[] = {
    {"produce", gq_cmd_produce, "publish generation requests"},
    {"worker", gq_cmd_worker, "render requests from Kafka through a local ComfyUI"},
    {"migrate", gq_cmd_migrate, "apply the PostgreSQL migrations"},
    {"cancel", gq_cmd_cancel, "cancel jobs (queued, running, or not consumed yet)"},
    {"events", gq_cmd_events, "print completion events (or progress) as JSON lines"},
    {"lag", gq_cmd_lag, "consumer lag and replicas, as KEDA computes them"},
    {"replay", gq_cmd_replay, "re-publish dead letters or failed jobs; move offsets"},
    {"schemas", gq_cmd_schemas, "the Avro schemas: list, show, check compatibility, register"},
    {"report", gq_cmd_report, "an HTML page of a time range: outputs, durations, failures"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: genq <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < GQ_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`genq <command> --help` shows a command's options; `genq help config` every\n"
                 "configuration key, in Markdown (docs/configuration.md).\n"
                 "Exit codes: 0 ok, 1 failure, 64 usage, 65 bad data, 69 service unavailable,\n"
                 "70 internal error, 78 configuration (see docs/exit-codes.md).\n");
}

static void version(void) {
    printf("genq %s\n", gq_version());
    printf("librdkafka %s, libcurl %s, libpq %d, jansson %s, avro-c\n", rd_kafka_version_str(),
           curl_version_info(CURLVERSION_NOW)->version, PQlibVersion(), jansson_version_str());
}

int main(int argc, char **argv) {
    /* Until a command reads its configuration, errors follow GENQ_LOG_FORMAT. */
    const char *format = getenv("GENQ_LOG_FORMAT");
    gq_log_set_json(format && strcmp(format, "json") == 0);
    if (argc < 2) {
        gq_err("no command given; try genq --help");
        return GQ_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 && argc == 3 && strcmp(argv[2], "config") == 0) {
        gq_cfg_markdown(stdout);
        return GQ_EXIT_OK;
    }
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return GQ_EXIT_OK;
    }
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        version();
        return GQ_EXIT_OK;
    }
    for (size_t i = 0; i < GQ_ARRAY_LEN(commands); i++) {
        if (strcmp(name, commands[i].name) == 0) {
            gq_log_init(commands[i].name);
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    gq_err("unknown command \"%s\"; try genq --help", name);
    return GQ_EXIT_USAGE;
}

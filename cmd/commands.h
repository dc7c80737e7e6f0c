/**
 * @file commands.h
 * @brief The subcommands of the genq executable. Each returns an exit code
 * (GQ_EXIT_*); only main() exits.
 */
#ifndef GQ_COMMANDS_H
#define GQ_COMMANDS_H

int gq_cmd_produce(int argc, char **argv);
int gq_cmd_worker(int argc, char **argv);
int gq_cmd_migrate(int argc, char **argv);
int gq_cmd_events(int argc, char **argv);
int gq_cmd_replay(int argc, char **argv);
int gq_cmd_lag(int argc, char **argv);
int gq_cmd_schemas(int argc, char **argv);
int gq_cmd_cancel(int argc, char **argv);
int gq_cmd_report(int argc, char **argv);

#endif

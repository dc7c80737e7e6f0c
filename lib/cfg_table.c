/* The configuration table: the single place where genq's keys are defined.
 * docs/configuration.md is generated from it by `genq help config`. */
#include "cfg.h"

#define W GQ_CMD_WORKER
#define P GQ_CMD_PRODUCE
#define M GQ_CMD_MIGRATE
#define E GQ_CMD_EVENTS
#define R GQ_CMD_REPLAY
#define L GQ_CMD_LAG
#define S GQ_CMD_SCHEMAS
#define C GQ_CMD_CANCEL
#define T GQ_CMD_REPORT
#define I64MAX INT64_MAX

static const gq_cfg_key_t cfg_keys[] = {
    /* Services */
    {"brokers", 'b', "GENQ_BROKERS", GQ_CFG_STR, "127.0.0.1:9092", 0, 0, W | P | E | R | L | C,
     false, "Kafka bootstrap servers, host:port[,host:port]"},
    {"database_url", 'd', "GENQ_DATABASE_URL", GQ_CFG_STR, "postgresql:///genq", 0, 0,
     W | M | R | C | T, true,
     "PostgreSQL connection URI or key=value string (genq cancel reads it only when set, to "
     "say how a job that already ended ended)"},
    {"comfyui_url", 'c', "GENQ_COMFYUI_URL", GQ_CFG_STR, "http://127.0.0.1:8188", 0, 0, W, true,
     "base URL of this worker's ComfyUI"},
    /* Schemas: writer schemas and the Schema Registry */
    {"schema_registry_url", 0, "GENQ_SCHEMA_REGISTRY_URL", GQ_CFG_STR, NULL, 0, 0,
     W | P | E | R | S | C, true,
     "Schema Registry (Confluent REST API, e.g. Apicurio's /apis/ccompat/v7): readers then also "
     "take Confluent-framed messages; https://user:password@host works for basic auth"},
    {"schema_registry_username", 0, "GENQ_SCHEMA_REGISTRY_USERNAME", GQ_CFG_STR, NULL, 0, 0,
     W | P | E | R | S | C, false, "Schema Registry basic-auth user (overrides the URL's)"},
    {"schema_registry_password", 0, "GENQ_SCHEMA_REGISTRY_PASSWORD", GQ_CFG_STR, NULL, 0, 0,
     W | P | E | R | S | C, true, "Schema Registry basic-auth password"},
    {"schema_registry_ca_file", 0, "GENQ_SCHEMA_REGISTRY_CA_FILE", GQ_CFG_STR, NULL, 0, 0,
     W | P | E | R | S | C, false,
     "PEM file of the CA(s) that sign an https registry's certificate"},
    {"schema_registry_timeout", 0, "GENQ_SCHEMA_REGISTRY_TIMEOUT", GQ_CFG_INT, "5000", 100, 600000,
     W | P | E | R | S | C, false, "milliseconds one Schema Registry request may take"},
    {"schema_dir", 0, "GENQ_SCHEMA_DIR", GQ_CFG_STR, NULL, 0, 0, W | P | E | R | S | C, false,
     "directory of extra writer schemas (*.avsc, e.g. a newer version) that readers resolve by "
     "fingerprint, besides the released versions compiled in"},
    {"traceparent", 0, "GENQ_TRACEPARENT", GQ_CFG_STR, NULL, 0, 0, P, false,
     "W3C traceparent the requests carry (00-<trace id>-<parent id>-<flags>); default: each "
     "request starts a trace of its own"},
    {"framing", 0, "GENQ_FRAMING", GQ_CFG_STR, "single-object", 0, 0, P | C, false,
     "how requests (genq cancel: cancel requests) are framed: single-object, or confluent "
     "(Schema Registry id; the schema is registered or looked up under <requests_topic>-value, "
     "<cancel_topic>-value)"},
    {"completed_framing", 0, "GENQ_COMPLETED_FRAMING", GQ_CFG_STR, "single-object", 0, 0, W, false,
     "how completion and progress events are framed: single-object, or confluent (the schemas "
     "are registered or looked up under <completed_topic>-value and <progress_topic>-value "
     "when the worker starts)"},
    /* Topics and group */
    {"requests_topic", 't', "GENQ_REQUESTS_TOPIC", GQ_CFG_STR, "genq.requests", 0, 0,
     W | P | R | L | S, false, "topic of GenerationRequest messages"},
    {"completed_topic", 0, "GENQ_COMPLETED_TOPIC", GQ_CFG_STR, "genq.completed", 0, 0,
     W | P | E | R | S | C, false, "topic of GenerationCompleted events"},
    {"progress_topic", 0, "GENQ_PROGRESS_TOPIC", GQ_CFG_STR, "genq.progress", 0, 0, W | P | E | S,
     false, "topic of GenerationProgress events (how far each job has got; best effort)"},
    {"cancel_topic", 0, "GENQ_CANCEL_TOPIC", GQ_CFG_STR, "genq.cancel", 0, 0, W | S | C, false,
     "compacted topic of CancelRequest messages, read whole by every worker (created compacted "
     "with one partition when missing)"},
    {"lanes", 0, "GENQ_LANES", GQ_CFG_STR, NULL, 0, 0, W | P | L | R | S, false,
     "priority lanes: request topics, most preferred first (priority > 0 goes to the first, "
     "< 0 to the last, 0 to the middle one); default: requests_topic alone"},
    {"dlq_topic", 0, "GENQ_DLQ_TOPIC", GQ_CFG_STR, "genq.requests.dlq", 0, 0, W | R, false,
     "dead-letter topic"},
    {"group", 'g', "GENQ_GROUP", GQ_CFG_STR, "genq-workers", 0, 0, W | R | L, false,
     "consumer group of the workers"},
    {"partitions", 0, "GENQ_PARTITIONS", GQ_CFG_INT, "6", 1, 10000, W | P | R, false,
     "partitions of the topics genq creates when they do not exist"},
    /* Worker */
    {"worker_id", 0, "GENQ_WORKER_ID", GQ_CFG_STR, NULL, 0, 0, W, false,
     "name recorded with each job (default: hostname-pid)"},
    {"output_dir", 'o', "GENQ_OUTPUT_DIR", GQ_CFG_STR, "./genq-outputs", 0, 0, W, false,
     "where outputs are stored, content-addressed"},
    {"output_url_prefix", 0, "GENQ_OUTPUT_URL_PREFIX", GQ_CFG_STR, NULL, 0, 0, W, false,
     "prefix of output URIs in records and events (default: file://<output_dir>)"},
    {"output_url", 0, "GENQ_OUTPUT_URL", GQ_CFG_STR, NULL, 0, 0, W | T, false,
     "s3://bucket/prefix: store outputs in an S3-compatible bucket instead of output_dir "
     "(objects <prefix>/<sha256[0:2]>/<sha256>.<ext>, recorded as s3:// URIs)"},
    {"s3_endpoint", 0, "GENQ_S3_ENDPOINT", GQ_CFG_STR, NULL, 0, 0, W | T, false,
     "S3 endpoint, http(s)://host[:port] (default: AWS's for s3_region)"},
    {"s3_region", 0, "GENQ_S3_REGION", GQ_CFG_STR, "us-east-1", 0, 0, W | T, false,
     "S3 region (signed into every request)"},
    {"s3_path_style", 0, "GENQ_S3_PATH_STYLE", GQ_CFG_BOOL, "false", 0, 0, W | T, false,
     "address objects as endpoint/bucket/key (most S3-compatible servers) rather than "
     "bucket.endpoint/key"},
    {"s3_access_key_id", 0, "AWS_ACCESS_KEY_ID", GQ_CFG_STR, NULL, 0, 0, W | T, false,
     "S3 access key id"},
    {"s3_secret_access_key", 0, "AWS_SECRET_ACCESS_KEY", GQ_CFG_STR, NULL, 0, 0, W | T, true,
     "S3 secret key (never logged; prefer the environment or s3_credentials_dir to a flag)"},
    {"s3_session_token", 0, "AWS_SESSION_TOKEN", GQ_CFG_STR, NULL, 0, 0, W | T, true,
     "S3 session token of temporary credentials"},
    {"s3_credentials_dir", 0, "GENQ_S3_CREDENTIALS_DIR", GQ_CFG_STR, NULL, 0, 0, W | T, false,
     "a directory with the files AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally "
     "AWS_SESSION_TOKEN (a mounted Kubernetes Secret), re-read every minute; wins over the "
     "three keys above"},
    {"s3_part_size", 0, "GENQ_S3_PART_SIZE", GQ_CFG_INT, "67108864", 5242880, 5368709120, W, false,
     "outputs larger than this are uploaded in parts of this size (multipart upload)"},
    {"s3_presign", 0, "GENQ_S3_PRESIGN", GQ_CFG_INT, "0", 0, 604800, W | T, false,
     "seconds: completion events (and genq report) carry presigned HTTPS URLs of the objects, "
     "valid this long, instead of s3:// URIs (0: off; the record keeps the s3:// URI)"},
    {"s3_ca_file", 0, "GENQ_S3_CA_FILE", GQ_CFG_STR, NULL, 0, 0, W | T, false,
     "CA bundle for the S3 endpoint's TLS certificate (default: the system's)"},
    {"comfyui_output_dir", 0, "GENQ_COMFYUI_OUTPUT_DIR", GQ_CFG_STR, NULL, 0, 0, W, false,
     "ComfyUI's --output-directory as this worker sees it (a shared volume): its copies of "
     "the outputs are deleted there once recorded (kept when unset)"},
    {"comfyui_temp_dir", 0, "GENQ_COMFYUI_TEMP_DIR", GQ_CFG_STR, NULL, 0, 0, W, false,
     "ComfyUI's temp directory (<--temp-directory>/temp): PreviewImage files of recorded "
     "jobs are deleted there (kept when unset)"},
    {"workflows_dir", 0, "GENQ_WORKFLOWS_DIR", GQ_CFG_STR, "./workflows", 0, 0, W, false,
     "directory of API-format workflow templates (<name>.json)"},
    {"inline_workflows", 0, "GENQ_INLINE_WORKFLOWS", GQ_CFG_STR, "allow", 0, 0, W, false,
     "requests' own workflows (workflow_json): off (refused), allowlist (only the node classes "
     "of inline_node_classes) or allow (any node ComfyUI has); a template without an "
     "\"_genq\".overrides list takes any override under allow, none otherwise"},
    {"inline_node_classes", 0, "GENQ_INLINE_NODE_CLASSES", GQ_CFG_STR, NULL, 0, 0, W, false,
     "node classes an inline workflow may use under allowlist: a file (a value with a /), one "
     "class a line, or a comma-separated list; the word default stands for genq's list of core "
     "ComfyUI nodes, which is also the default"},
    {"queue_depth", 0, "GENQ_QUEUE_DEPTH", GQ_CFG_INT, "1", 0, 8, W, false,
     "prompts kept queued in ComfyUI ahead of the one rendering"},
    {"schedule", 0, "GENQ_SCHEDULE", GQ_CFG_STR, "fair", 0, 0, W, false,
     "fair (lanes, aging, tenant turns, model affinity) or fifo (lanes, then arrival order)"},
    {"cache", 0, "GENQ_CACHE", GQ_CFG_STR, "on", 0, 0, W, false,
     "on: a request whose bound workflow equals an earlier succeeded job's is answered from "
     "that job's outputs, without a render (a request opts out with metadata genq-cache=off); "
     "off: every job renders"},
    {"cache_salt", 0, "GENQ_CACHE_SALT", GQ_CFG_STR, "", 0, 0, W, false,
     "mixed into every cache key: change it when renders change under the same workflow (a "
     "model file replaced under its name, new custom node code) to start a fresh cache"},
    {"lookahead", 0, "GENQ_LOOKAHEAD", GQ_CFG_INT, "64", 1, 10000, W, false,
     "ready jobs the scheduler chooses among (decoded and bound ahead of a free slot)"},
    {"max_passes", 0, "GENQ_MAX_PASSES", GQ_CFG_INT, "32", 0, 100000, W, false,
     "a job passed over this often (for another tenant or model) goes next (0: no bound)"},
    {"max_sched_wait", 0, "GENQ_MAX_SCHED_WAIT", GQ_CFG_INT, "120", 0, 86400, W, false,
     "seconds a job may wait beyond its FIFO turn (as the oldest ready job of its lane) "
     "before it goes next (0: no bound)"},
    {"fair_quantum", 0, "GENQ_FAIR_QUANTUM", GQ_CFG_INT, "4", 1, 10000, W, false,
     "jobs (times its weight) a tenant (request source) may get ahead of the tenant furthest "
     "behind to keep the loaded model"},
    {"tenant_weights", 0, "GENQ_TENANT_WEIGHTS", GQ_CFG_STR, NULL, 0, 0, W, false,
     "tenant=weight,... (others weigh 1)"},
    {"tenant_max_in_flight", 0, "GENQ_TENANT_MAX_IN_FLIGHT", GQ_CFG_INT, "0", 0, 10000, W, false,
     "jobs one tenant may have in ComfyUI at once (0: no quota)"},
    {"lane_weights", 0, "GENQ_LANE_WEIGHTS", GQ_CFG_STR, NULL, 0, 0, W, false,
     "weights of the lanes, e.g. 8,2,1: lanes take turns in proportion (default: strict "
     "preference, a lane is served only when the ones before it are empty)"},
    {"backlog", 0, "GENQ_BACKLOG", GQ_CFG_INT, "256", 1, 100000, W, false,
     "messages a worker takes ahead of ComfyUI (its intake pauses beyond this, resumes at half)"},
    {"max_attempts", 0, "GENQ_MAX_ATTEMPTS", GQ_CFG_INT, "3", 1, 100, W | P | R, false,
     "attempts per job when the request does not say"},
    {"job_timeout", 0, "GENQ_JOB_TIMEOUT", GQ_CFG_INT, "600", 1, 86400, W, false,
     "seconds a render may take when the request does not say"},
    {"stall_timeout", 0, "GENQ_STALL_TIMEOUT", GQ_CFG_INT, "120", 1, 86400, W, false,
     "seconds without a sign of life from ComfyUI (an event, or its queue saying the prompt "
     "runs) before a render counts as stalled"},
    {"grace_period", 0, "GENQ_GRACE_PERIOD", GQ_CFG_INT, "60", 0, 86400, W, false,
     "seconds a SIGTERM waits for running renders before interrupting them"},
    {"max_message_bytes", 0, "GENQ_MAX_MESSAGE_BYTES", GQ_CFG_INT, "1048576", 64, 104857600, W | E,
     false, "largest request message accepted"},
    {"max_output_bytes", 0, "GENQ_MAX_OUTPUT_BYTES", GQ_CFG_INT, "268435456", 1024, I64MAX, W,
     false, "largest output file downloaded from ComfyUI"},
    {"outbox_retry", 0, "GENQ_OUTBOX_RETRY", GQ_CFG_INT, "60", 1, 86400, W, false,
     "seconds before a completion event or dead letter not acknowledged by Kafka is published "
     "again (by any worker)"},
    {"outbox_max_attempts", 0, "GENQ_OUTBOX_MAX_ATTEMPTS", GQ_CFG_INT, "5", 1, 1000, W, false,
     "failed publications of one outbox message before it is parked (kept, counted, alerted on)"},
    {"start_wait", 0, "GENQ_START_WAIT", GQ_CFG_INT, "0", 0, 86400, W, false,
     "seconds to keep retrying at start while PostgreSQL is unreachable or not migrated "
     "(alive, not ready), instead of exiting 69 or 78 at once"},
    {"http_listen", 0, "GENQ_HTTP_LISTEN", GQ_CFG_STR, NULL, 0, 0, W, false,
     "address:port of /healthz, /readyz and /metrics (off unless set)"},
    {"progress_interval", 0, "GENQ_PROGRESS_INTERVAL", GQ_CFG_INT, "500", 0, 3600000, W, false,
     "milliseconds between two progress events of one job (one more at each change of its "
     "state, node or queue position); 0: no progress events"},
    {"warmup", 0, "GENQ_WARMUP", GQ_CFG_STR, NULL, 0, 0, W, false,
     "templates (comma-separated) rendered once at start, before ready: loads their models"},
    /* Logging */
    {"log_level", 0, "GENQ_LOG_LEVEL", GQ_CFG_STR, "info", 0, 0, GQ_CMD_ALL, false,
     "error, warn, info or debug"},
    {"log_format", 0, "GENQ_LOG_FORMAT", GQ_CFG_STR, "text", 0, 0, GQ_CMD_ALL, false,
     "text or json"},
    /* produce: request fields */
    {"file", 'f', NULL, GQ_CFG_STR, NULL, 0, 0, P, false,
     "read requests as JSON lines from this file (- for stdin)"},
    {"count", 'n', NULL, GQ_CFG_INT, "1", 1, 10000000, P, false,
     "publish this many requests from the flags (seed increments)"},
    {"job_id", 0, NULL, GQ_CFG_STR, NULL, 0, 0, P, false, "job id (default: a new uuid)"},
    {"workflow", 'w', NULL, GQ_CFG_STR, "txt2img", 0, 0, P, false,
     "template name, or @file.json for an inline API-format workflow"},
    {"prompt", 'p', NULL, GQ_CFG_STR, NULL, 0, 0, P, false, "positive prompt"},
    {"negative_prompt", 0, NULL, GQ_CFG_STR, "", 0, 0, P, false, "negative prompt"},
    {"model", 'm', NULL, GQ_CFG_STR, NULL, 0, 0, P | R | T, false,
     "checkpoint name (replay: only jobs of this model, as recorded, else as requested; "
     "report: only this model)"},
    {"width", 0, NULL, GQ_CFG_INT, "512", 16, 16384, P, false, "image width"},
    {"height", 0, NULL, GQ_CFG_INT, "512", 16, 16384, P, false, "image height"},
    {"seed", 0, NULL, GQ_CFG_INT, NULL, 0, I64MAX, P, false, "seed (default: random)"},
    {"steps", 0, NULL, GQ_CFG_INT, "20", 1, 10000, P, false, "sampler steps"},
    {"cfg_scale", 0, NULL, GQ_CFG_DOUBLE, "7", 0, 0, P, false, "classifier-free guidance"},
    {"sampler", 0, NULL, GQ_CFG_STR, "euler", 0, 0, P, false, "sampler name"},
    {"scheduler", 0, NULL, GQ_CFG_STR, "normal", 0, 0, P, false, "scheduler"},
    {"batch_size", 0, NULL, GQ_CFG_INT, "1", 1, 64, P, false, "images per request"},
    {"priority", 0, NULL, GQ_CFG_INT, "0", -1000, 1000, P, false,
     "picks the lane with GENQ_LANES (> 0 the first, < 0 the last, 0 the middle one; without "
     "lanes every request goes to --requests-topic) and is recorded with the job; workers "
     "serve the first lane with work first, then within a lane by aging bounds, tenant turns, "
     "model affinity and arrival, never by the number itself"},
    {"source", 0, "GENQ_SOURCE", GQ_CFG_STR, "genq-cli", 0, 0, P, false,
     "source/tenant recorded with the job"},
    {"timeout", 0, NULL, GQ_CFG_INT, NULL, 1, 86400, P, false, "render deadline in seconds"},
    {"wait", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, P | C, false,
     "follow the jobs' completion events (produce: and their progress) until all are done"},
    {"wait_timeout", 0, NULL, GQ_CFG_INT, "3600", 1, 604800, P | C, false, "seconds --wait waits"},
    {"write_messages", 0, NULL, GQ_CFG_STR, NULL, 0, 0, P, false,
     "write the messages to this file instead of publishing them (each as u32 big-endian key "
     "length, key, u32 big-endian value length, value); ids are printed as if delivered"},
    /* events */
    {"from", 0, NULL, GQ_CFG_STR, "end", 0, 0, E, false,
     "start at: beginning, end, an offset, or @<unix-ms> timestamp"},
    {"follow", 'F', NULL, GQ_CFG_BOOL, "false", 0, 0, E, false, "keep waiting for new events"},
    {"limit", 0, NULL, GQ_CFG_INT, "0", 0, I64MAX, E | R, false,
     "stop after this many (events printed, jobs or dead letters replayed; 0: no limit)"},
    {"job", 0, NULL, GQ_CFG_STR, NULL, 0, 0, E, false, "only events of this job id"},
    {"progress", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, E, false,
     "progress events (the progress topic) instead of completion events: live bars on a "
     "terminal (text logs), else JSON lines"},
    {"json", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, E, false,
     "with --progress: JSON lines even on a terminal"},
    /* lag: KEDA's kafka trigger (a ScaledObject file sets them all; a flag still wins) */
    {"scaled_object", 'f', NULL, GQ_CFG_STR, NULL, 0, 0, L, false,
     "a KEDA ScaledObject (YAML): compute with its kafka triggers' settings and replica "
     "bounds (several triggers: summed by its scalingModifiers formula, else the HPA's "
     "largest count)"},
    {"all_topics", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, L, false,
     "every topic the group has committed offsets for (a trigger without topic)"},
    {"lag_threshold", 0, NULL, GQ_CFG_INT, "10", 1, I64MAX, L, false, "KEDA lagThreshold"},
    {"activation_lag_threshold", 0, NULL, GQ_CFG_INT, "0", 0, I64MAX, L, false,
     "KEDA activationLagThreshold"},
    {"offset_reset_policy", 0, NULL, GQ_CFG_STR, "earliest", 0, 0, L, false,
     "KEDA offsetResetPolicy (genq's consumers use earliest; KEDA's default is latest)"},
    {"scale_to_zero_on_invalid_offset", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, L, false,
     "KEDA scaleToZeroOnInvalidOffset"},
    {"partition_limitation", 0, NULL, GQ_CFG_STR, NULL, 0, 0, L, false,
     "KEDA partitionLimitation: only these partitions, e.g. 1,2,10-20 (ignored with "
     "all_topics)"},
    {"allow_idle_consumers", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, L, false,
     "KEDA allowIdleConsumers: no cap at the partition count"},
    {"limit_to_partitions_with_lag", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, L, false,
     "KEDA limitToPartitionsWithLag: cap at the partitions that have lag"},
    {"ensure_even_distribution_of_partitions", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, L, false,
     "KEDA ensureEvenDistributionOfPartitions: a replica count that divides the partitions"},
    {"exclude_persistent_lag", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, L, false,
     "KEDA excludePersistentLag: a commit that did not move since the previous run (see "
     "lag_state) counts 0"},
    {"lag_state", 0, NULL, GQ_CFG_STR, NULL, 0, 0, L, false,
     "file keeping the committed offsets between runs, as KEDA keeps them between polls "
     "(for exclude_persistent_lag)"},
    {"min_replicas", 0, NULL, GQ_CFG_INT, "0", 0, 10000, L, false, "minReplicaCount"},
    {"max_replicas", 0, NULL, GQ_CFG_INT, "100", 1, 10000, L, false, "maxReplicaCount"},
    {"format", 0, NULL, GQ_CFG_STR, "text", 0, 0, L, false, "text or json"},
    /* schemas */
    {"level", 0, NULL, GQ_CFG_STR, "full", 0, 0, S, false,
     "schemas check: backward, forward or full compatibility with every released version"},
    {"history_dir", 0, NULL, GQ_CFG_STR, NULL, 0, 0, S, false,
     "schemas check: released versions from this directory (<Name>.v<N>.avsc) instead of the "
     "ones compiled in"},
    {"schemas_from", 0, NULL, GQ_CFG_STR, NULL, 0, 0, S, false,
     "schemas check/show: the current .avsc files from this directory instead of the ones "
     "compiled in"},
    /* replay */
    {"dry_run", 'n', NULL, GQ_CFG_BOOL, "false", 0, 0, R, false,
     "show what would be replayed, change nothing"},
    {"force", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, R, false,
     "also replay jobs that already succeeded (they render again); dlq: and jobs left queued by "
     "a replay whose message was not delivered"},
    {"reason", 0, NULL, GQ_CFG_STR, NULL, 0, 0, R | C, false,
     "replay dlq: only dead letters with this genq-reason; cancel: why (at most 512 bytes, "
     "kept in genq.cancels and the completion event's error.message)"},
    {"include_undecodable", 0, NULL, GQ_CFG_BOOL, "false", 0, 0, R, false,
     "dlq: also re-publish messages that could not be decoded"},
    {"since", 0, NULL, GQ_CFG_STR, NULL, 0, 0, R | T, false,
     "from this time (dlq: when the dead letter was written; jobs: when the job finished): "
     "unix ms, ISO 8601 (2026-12-01T18:00:00Z; UTC without an offset), now, or -30m / -2h / "
     "-1d"},
    {"until", 0, NULL, GQ_CFG_STR, NULL, 0, 0, R | T, false,
     "until this time (same forms; report: default now)"},
    /* report */
    {"tenant", 0, NULL, GQ_CFG_STR, NULL, 0, 0, T, false,
     "only jobs of this tenant (the request's source)"},
    {"out", 0, NULL, GQ_CFG_STR, "genq-report.html", 0, 0, T, false,
     "the HTML file to write (its path is printed)"},
    {"report_thumbs", 0, NULL, GQ_CFG_INT, "200", 0, 100000, T, false,
     "outputs shown in the contact sheet at most (the latest)"},
    {"report_embed_max", 0, NULL, GQ_CFG_INT, "524288", 0, 67108864, T, false,
     "file outputs up to this many bytes are embedded in the page (data: URIs), larger ones "
     "linked"},
    {"status", 0, NULL, GQ_CFG_STR, "failed", 0, 0, R, false, "jobs: failed or succeeded"},
    {"error_code", 0, NULL, GQ_CFG_STR, NULL, 0, 0, R, false, "jobs: only this error code"},
    {"to_offset", 0, NULL, GQ_CFG_INT, NULL, 0, I64MAX, R, false,
     "offsets: move every partition (or --partition) to this offset"},
    {"to_time", 0, NULL, GQ_CFG_STR, NULL, 0, 0, R, false,
     "offsets: move to the first offset at or after this time (the forms of since)"},
    {"idle_timeout", 0, NULL, GQ_CFG_INT, "30", 1, 86400, R, false,
     "dlq: seconds without a dead letter arriving before giving up on reading the topic up to "
     "the end it had at start (exit 1)"},
    {"partition", 0, NULL, GQ_CFG_INT, NULL, 0, 100000, R, false, "offsets: only this partition"},
    /* cancel */
    {"requested_by", 0, "GENQ_REQUESTED_BY", GQ_CFG_STR, "genq-cli", 0, 0, C, false,
     "who asks for the cancel: a service or tenant (at most 128 bytes)"},
    {"if_source", 0, NULL, GQ_CFG_STR, NULL, 0, 0, C, false,
     "cancel only if the job's source (tenant) is this"},
};

/* gq_cfg_t holds one value per key: a table beyond it would write past its arrays. */
_Static_assert(sizeof(cfg_keys) / sizeof(cfg_keys[0]) <= GQ_CFG_MAX_KEYS,
               "lib/cfg_table.c has more keys than GQ_CFG_MAX_KEYS (lib/cfg.h)");

const gq_cfg_key_t *gq_cfg_table(size_t *cnt) {
    *cnt = sizeof(cfg_keys) / sizeof(cfg_keys[0]);
    return cfg_keys;
}

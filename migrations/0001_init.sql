-- genq schema, version 1: jobs, their attempts and outputs, consumed offsets, rejected
-- messages, and two views for analysts.
--
-- Applied by `genq migrate` inside one transaction (do not add BEGIN/COMMIT here); the
-- runner itself creates schema genq and genq.schema_migrations beforehand. Never edit this
-- file once released: the runner compares checksums and refuses a changed migration. Add
-- 0002_<name>.sql instead.

CREATE SCHEMA IF NOT EXISTS genq;
COMMENT ON SCHEMA genq IS
    'genq: the image-generation job queue''s record of jobs, attempts, outputs and consumed '
    'Kafka offsets. Written by the workers; read by anyone.';

-- ---------------------------------------------------------------------------------------
-- jobs: one row per job_id, the latest state. Terminal rows (succeeded, failed) are
-- written once and never change again.

CREATE TABLE genq.jobs (
    job_id          uuid        PRIMARY KEY,
    status          text        NOT NULL
                                CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer     CHECK (max_attempts > 0),
    model           text,
    workflow        text,
    prompt          text,
    negative_prompt text,
    width           integer,
    height          integer,
    seed            bigint,
    steps           integer,
    cfg             double precision,
    sampler         text,
    scheduler       text,
    batch_size      integer,
    priority        integer,
    source          text,
    timeout_s       integer     CHECK (timeout_s > 0),
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    submitted_at    timestamptz,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    queue_ms        bigint,
    render_ms       bigint,
    total_ms        bigint,
    worker_id       text,
    comfy_prompt_id text,
    error_code      text,
    error           text,
    error_retryable boolean,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_terminal_has_finished_at
        CHECK (status NOT IN ('succeeded', 'failed') OR finished_at IS NOT NULL)
);

CREATE INDEX jobs_status_idx ON genq.jobs (status);
CREATE INDEX jobs_model_finished_at_idx ON genq.jobs (model, finished_at);
CREATE INDEX jobs_finished_at_idx ON genq.jobs (finished_at);
CREATE INDEX jobs_source_idx ON genq.jobs (source);

COMMENT ON TABLE genq.jobs IS
    'One row per generation job (GenerationRequest.job_id): the request''s parameters and the '
    'job''s latest state. A terminal row (succeeded or failed) is written once, in the same '
    'transaction as its outputs and the consumed Kafka offset, and never changes afterwards.';
COMMENT ON COLUMN genq.jobs.job_id IS 'The request''s job id (uuid), also the Kafka message key.';
COMMENT ON COLUMN genq.jobs.status IS
    'queued (waiting for a retry), running (an attempt is rendering), succeeded or failed '
    '(terminal).';
COMMENT ON COLUMN genq.jobs.attempts IS
    'Number of the latest attempt (1 = first try); 0 if the job failed before any attempt '
    '(e.g. a request rejected as invalid).';
COMMENT ON COLUMN genq.jobs.max_attempts IS
    'Attempts the request allowed; NULL when it did not say (the worker''s max_attempts applied).';
COMMENT ON COLUMN genq.jobs.model IS
    'Checkpoint requested; NULL means the workflow template''s own checkpoint.';
COMMENT ON COLUMN genq.jobs.workflow IS
    'Workflow template name (a label when the request carried an inline workflow).';
COMMENT ON COLUMN genq.jobs.prompt IS 'Positive prompt.';
COMMENT ON COLUMN genq.jobs.negative_prompt IS 'Negative prompt.';
COMMENT ON COLUMN genq.jobs.width IS 'Requested image width in pixels.';
COMMENT ON COLUMN genq.jobs.height IS 'Requested image height in pixels.';
COMMENT ON COLUMN genq.jobs.seed IS 'Sampler seed.';
COMMENT ON COLUMN genq.jobs.steps IS 'Sampler steps.';
COMMENT ON COLUMN genq.jobs.cfg IS 'Classifier-free guidance scale.';
COMMENT ON COLUMN genq.jobs.sampler IS 'Sampler name (e.g. euler).';
COMMENT ON COLUMN genq.jobs.scheduler IS 'Scheduler name (e.g. normal, karras).';
COMMENT ON COLUMN genq.jobs.batch_size IS 'Images requested per job.';
COMMENT ON COLUMN genq.jobs.priority IS 'Request priority (higher first).';
COMMENT ON COLUMN genq.jobs.source IS 'Tenant or calling service that submitted the job.';
COMMENT ON COLUMN genq.jobs.timeout_s IS
    'Render deadline the request asked for, in seconds; NULL when it did not say.';
COMMENT ON COLUMN genq.jobs.metadata IS
    'The request''s metadata map (string to string), as a JSON object; {} when none.';
COMMENT ON COLUMN genq.jobs.submitted_at IS
    'When the producer created the request (its clock); NULL if unknown.';
COMMENT ON COLUMN genq.jobs.first_seen_at IS
    'When a worker first recorded this job (database clock).';
COMMENT ON COLUMN genq.jobs.started_at IS 'When the latest attempt started rendering.';
COMMENT ON COLUMN genq.jobs.finished_at IS
    'When the job reached its terminal state; NULL until then.';
COMMENT ON COLUMN genq.jobs.queue_ms IS
    'Milliseconds from submission to the start of the final render (time spent waiting).';
COMMENT ON COLUMN genq.jobs.render_ms IS
    'Milliseconds the final attempt spent rendering in ComfyUI.';
COMMENT ON COLUMN genq.jobs.total_ms IS 'Milliseconds from submission to the terminal state.';
COMMENT ON COLUMN genq.jobs.worker_id IS
    'Worker that ran the latest attempt (hostname-pid by default).';
COMMENT ON COLUMN genq.jobs.comfy_prompt_id IS 'ComfyUI prompt_id of the latest attempt.';
COMMENT ON COLUMN genq.jobs.error_code IS
    'Machine-readable error of a failed job (or of the last failed attempt while queued).';
COMMENT ON COLUMN genq.jobs.error IS 'Human-readable error message matching error_code.';
COMMENT ON COLUMN genq.jobs.error_retryable IS
    'Whether the error was of a retryable class (a failed job exhausted its attempts).';
COMMENT ON COLUMN genq.jobs.kafka_topic IS
    'Topic of the request message last processed for this job.';
COMMENT ON COLUMN genq.jobs.kafka_partition IS 'Partition of that message.';
COMMENT ON COLUMN genq.jobs.kafka_offset IS 'Offset of that message.';
COMMENT ON COLUMN genq.jobs.updated_at IS 'When a worker last changed this row.';
COMMENT ON CONSTRAINT jobs_terminal_has_finished_at ON genq.jobs IS
    'A succeeded or failed job always has finished_at.';

-- ---------------------------------------------------------------------------------------
-- job_attempts: one row per try of a job.

CREATE TABLE genq.job_attempts (
    job_id          uuid        NOT NULL REFERENCES genq.jobs (job_id) ON DELETE CASCADE,
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    worker_id       text,
    comfy_prompt_id text,
    status          text        NOT NULL
                                CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    started_at      timestamptz,
    finished_at     timestamptz,
    queue_ms        bigint,
    render_ms       bigint,
    error_code      text,
    error           text,
    PRIMARY KEY (job_id, attempt)
);

COMMENT ON TABLE genq.job_attempts IS
    'One row per attempt of a job: which worker and ComfyUI prompt ran it, how long it took, '
    'and how it ended.';
COMMENT ON COLUMN genq.job_attempts.job_id IS 'The job (genq.jobs.job_id).';
COMMENT ON COLUMN genq.job_attempts.attempt IS 'Attempt number, 1 for the first try.';
COMMENT ON COLUMN genq.job_attempts.worker_id IS 'Worker that ran this attempt.';
COMMENT ON COLUMN genq.job_attempts.comfy_prompt_id IS 'ComfyUI prompt_id of this attempt.';
COMMENT ON COLUMN genq.job_attempts.status IS
    'running, succeeded, failed, or abandoned (a later attempt started while this one was '
    'still marked running: its worker died or lost the partition).';
COMMENT ON COLUMN genq.job_attempts.started_at IS 'When the attempt started.';
COMMENT ON COLUMN genq.job_attempts.finished_at IS 'When the attempt ended; NULL while running.';
COMMENT ON COLUMN genq.job_attempts.queue_ms IS
    'Milliseconds from submission to the start of this attempt''s render.';
COMMENT ON COLUMN genq.job_attempts.render_ms IS 'Milliseconds this attempt spent rendering.';
COMMENT ON COLUMN genq.job_attempts.error_code IS 'Machine-readable error of a failed attempt.';
COMMENT ON COLUMN genq.job_attempts.error IS 'Human-readable error message of a failed attempt.';

-- ---------------------------------------------------------------------------------------
-- job_outputs: the images of a succeeded job.

CREATE TABLE genq.job_outputs (
    job_id uuid     NOT NULL REFERENCES genq.jobs (job_id) ON DELETE CASCADE,
    idx    integer  NOT NULL CHECK (idx >= 0),
    uri    text     NOT NULL,
    sha256 char(64) NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes  bigint   CHECK (bytes >= 0),
    width  integer,
    height integer,
    mime   text,
    PRIMARY KEY (job_id, idx)
);

CREATE INDEX job_outputs_sha256_idx ON genq.job_outputs (sha256);

COMMENT ON TABLE genq.job_outputs IS
    'The output files of a succeeded job, in ComfyUI''s order. Files are content-addressed: '
    'the same image rendered twice has the same sha256 and the same stored file.';
COMMENT ON COLUMN genq.job_outputs.job_id IS 'The job (genq.jobs.job_id).';
COMMENT ON COLUMN genq.job_outputs.idx IS
    'Position of the output among the job''s outputs, from 0.';
COMMENT ON COLUMN genq.job_outputs.uri IS
    'Where the stored file can be read (file:// or the configured URL prefix).';
COMMENT ON COLUMN genq.job_outputs.sha256 IS 'SHA-256 of the file''s bytes, lowercase hex.';
COMMENT ON COLUMN genq.job_outputs.bytes IS 'File size in bytes.';
COMMENT ON COLUMN genq.job_outputs.width IS 'Image width in pixels, if known.';
COMMENT ON COLUMN genq.job_outputs.height IS 'Image height in pixels, if known.';
COMMENT ON COLUMN genq.job_outputs.mime IS 'Media type, e.g. image/png.';

-- ---------------------------------------------------------------------------------------
-- consumer_offsets: the source of truth for where each consumer group resumes.

CREATE TABLE genq.consumer_offsets (
    consumer_group  text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL CHECK (kafka_partition >= 0),
    next_offset     bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

COMMENT ON TABLE genq.consumer_offsets IS
    'Next Kafka offset to consume per (group, topic, partition), written in the same '
    'transaction as the job record it follows, so a crash neither loses nor repeats a '
    'recorded result. Workers start from here on partition assignment; the same offsets are '
    'also committed to Kafka afterwards for lag monitoring and autoscaling. Only ever moves '
    'forward.';
COMMENT ON COLUMN genq.consumer_offsets.consumer_group IS
    'Kafka consumer group (e.g. genq-workers).';
COMMENT ON COLUMN genq.consumer_offsets.topic IS 'Kafka topic (e.g. genq.requests).';
COMMENT ON COLUMN genq.consumer_offsets.kafka_partition IS 'Partition number.';
COMMENT ON COLUMN genq.consumer_offsets.next_offset IS
    'Offset of the next message to process (the last processed offset + 1).';
COMMENT ON COLUMN genq.consumer_offsets.updated_at IS 'When the offset was last written.';

-- ---------------------------------------------------------------------------------------
-- rejected_messages: messages that were not usable requests.

CREATE TABLE genq.rejected_messages (
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    job_id          uuid,
    reason          text,
    error           text,
    payload         bytea,
    payload_bytes   bigint,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);

CREATE INDEX rejected_messages_job_id_idx ON genq.rejected_messages (job_id)
    WHERE job_id IS NOT NULL;

COMMENT ON TABLE genq.rejected_messages IS
    'Request-topic messages that could not be used as requests (undecodable, unknown schema, '
    'no job id), kept for inspection; one row per message, however often it is redelivered.';
COMMENT ON COLUMN genq.rejected_messages.topic IS 'Topic of the message.';
COMMENT ON COLUMN genq.rejected_messages.kafka_partition IS 'Partition of the message.';
COMMENT ON COLUMN genq.rejected_messages.kafka_offset IS 'Offset of the message.';
COMMENT ON COLUMN genq.rejected_messages.job_id IS
    'Job id, when it could still be read from the message and is a valid uuid.';
COMMENT ON COLUMN genq.rejected_messages.reason IS 'Short machine-readable reason (e.g. decode).';
COMMENT ON COLUMN genq.rejected_messages.error IS 'Human-readable description of the problem.';
COMMENT ON COLUMN genq.rejected_messages.payload IS 'The raw message value, cut at 1 MiB.';
COMMENT ON COLUMN genq.rejected_messages.payload_bytes IS
    'Size of the original message value in bytes (payload may be shorter).';
COMMENT ON COLUMN genq.rejected_messages.received_at IS 'When the worker recorded the rejection.';

-- ---------------------------------------------------------------------------------------
-- Views for analysts. Latency percentiles count succeeded jobs only: a failure's duration
-- says more about timeouts than about rendering speed.

CREATE VIEW genq.model_stats AS
SELECT
    model,
    count(*)                                                  AS jobs,
    count(*) FILTER (WHERE status = 'succeeded')              AS succeeded,
    count(*) FILTER (WHERE status = 'failed')                 AS failed,
    count(*) FILTER (WHERE status IN ('queued', 'running'))   AS in_flight,
    round(count(*) FILTER (WHERE status = 'failed')::numeric
          / nullif(count(*) FILTER (WHERE status IN ('succeeded', 'failed')), 0), 4)
                                                              AS failure_rate,
    percentile_cont(0.50) WITHIN GROUP (ORDER BY render_ms)
        FILTER (WHERE status = 'succeeded')                   AS render_ms_p50,
    percentile_cont(0.90) WITHIN GROUP (ORDER BY render_ms)
        FILTER (WHERE status = 'succeeded')                   AS render_ms_p90,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY render_ms)
        FILTER (WHERE status = 'succeeded')                   AS render_ms_p99,
    percentile_cont(0.50) WITHIN GROUP (ORDER BY total_ms)
        FILTER (WHERE status = 'succeeded')                   AS total_ms_p50,
    percentile_cont(0.90) WITHIN GROUP (ORDER BY total_ms)
        FILTER (WHERE status = 'succeeded')                   AS total_ms_p90,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY total_ms)
        FILTER (WHERE status = 'succeeded')                   AS total_ms_p99,
    avg(queue_ms) FILTER (WHERE status IN ('succeeded', 'failed')) AS avg_queue_ms,
    max(finished_at)                                          AS last_finished_at
FROM genq.jobs
GROUP BY model;

COMMENT ON VIEW genq.model_stats IS
    'Per model (NULL = the template''s checkpoint), over all recorded jobs: counts, failure '
    'rate and latency percentiles. Percentiles are over succeeded jobs only.';
COMMENT ON COLUMN genq.model_stats.model IS 'Checkpoint (NULL = the workflow template''s own).';
COMMENT ON COLUMN genq.model_stats.jobs IS 'Jobs recorded, in any state.';
COMMENT ON COLUMN genq.model_stats.succeeded IS 'Jobs that succeeded.';
COMMENT ON COLUMN genq.model_stats.failed IS 'Jobs that failed for good.';
COMMENT ON COLUMN genq.model_stats.in_flight IS 'Jobs queued for a retry or running.';
COMMENT ON COLUMN genq.model_stats.failure_rate IS
    'failed / (succeeded + failed), 0..1; NULL before any job finished.';
COMMENT ON COLUMN genq.model_stats.render_ms_p50 IS 'Median render time of succeeded jobs, ms.';
COMMENT ON COLUMN genq.model_stats.render_ms_p90 IS
    '90th percentile render time of succeeded jobs, ms.';
COMMENT ON COLUMN genq.model_stats.render_ms_p99 IS
    '99th percentile render time of succeeded jobs, ms.';
COMMENT ON COLUMN genq.model_stats.total_ms_p50 IS
    'Median submission-to-completion time of succeeded jobs, ms.';
COMMENT ON COLUMN genq.model_stats.total_ms_p90 IS
    '90th percentile submission-to-completion time of succeeded jobs, ms.';
COMMENT ON COLUMN genq.model_stats.total_ms_p99 IS
    '99th percentile submission-to-completion time of succeeded jobs, ms.';
COMMENT ON COLUMN genq.model_stats.avg_queue_ms IS
    'Average wait from submission to the final render''s start, finished jobs, ms.';
COMMENT ON COLUMN genq.model_stats.last_finished_at IS
    'When the latest job of this model finished.';

CREATE VIEW genq.hourly_stats AS
SELECT
    date_trunc('hour', finished_at, 'UTC')                    AS hour,
    model,
    count(*)                                                  AS jobs,
    count(*) FILTER (WHERE status = 'succeeded')              AS succeeded,
    count(*) FILTER (WHERE status = 'failed')                 AS failed,
    percentile_cont(0.50) WITHIN GROUP (ORDER BY render_ms)
        FILTER (WHERE status = 'succeeded')                   AS render_ms_p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY render_ms)
        FILTER (WHERE status = 'succeeded')                   AS render_ms_p95,
    sum(render_ms) FILTER (WHERE status = 'succeeded')        AS render_ms_sum
FROM genq.jobs
WHERE finished_at IS NOT NULL
GROUP BY 1, 2;

COMMENT ON VIEW genq.hourly_stats IS
    'Finished jobs per UTC hour (of finished_at) and model: counts and render-time '
    'percentiles of succeeded jobs. It aggregates every finished job: for recent hours, '
    'query genq.jobs with a finished_at range instead.';
COMMENT ON COLUMN genq.hourly_stats.hour IS 'Start of the UTC hour in which the jobs finished.';
COMMENT ON COLUMN genq.hourly_stats.model IS 'Checkpoint (NULL = the workflow template''s own).';
COMMENT ON COLUMN genq.hourly_stats.jobs IS 'Jobs that finished in this hour.';
COMMENT ON COLUMN genq.hourly_stats.succeeded IS 'Of those, succeeded.';
COMMENT ON COLUMN genq.hourly_stats.failed IS 'Of those, failed.';
COMMENT ON COLUMN genq.hourly_stats.render_ms_p50 IS
    'Median render time of the succeeded ones, ms.';
COMMENT ON COLUMN genq.hourly_stats.render_ms_p95 IS
    '95th percentile render time of the succeeded ones, ms.';
COMMENT ON COLUMN genq.hourly_stats.render_ms_sum IS
    'Total render time of the succeeded ones, ms (GPU busy time).';

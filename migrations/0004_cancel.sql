-- 0004: cancelling jobs (`genq cancel`, the CancelRequest topic).
--
-- Every worker reads the whole cancel topic and records each cancel here (genq.cancels,
-- idempotently: the same message recorded by ten workers is one row). A cancelled job gets
-- the terminal status `cancelled`, and genq.attempt_begin refuses to start a job whose cancel
-- is recorded, so a job consumed later, by any worker, is never rendered.

-- A third terminal status. Terminal rows are still written once and never change.
ALTER TABLE genq.jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE genq.jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE genq.jobs DROP CONSTRAINT jobs_terminal_has_finished_at;
ALTER TABLE genq.jobs ADD CONSTRAINT jobs_terminal_has_finished_at
    CHECK (status NOT IN ('succeeded', 'failed', 'cancelled') OR finished_at IS NOT NULL);
COMMENT ON CONSTRAINT jobs_terminal_has_finished_at ON genq.jobs IS
    'A succeeded, failed or cancelled job always has finished_at.';
COMMENT ON TABLE genq.jobs IS
    'One row per generation job (GenerationRequest.job_id): the request''s parameters and the '
    'job''s latest state. A terminal row (succeeded, failed or cancelled) is written once, in '
    'the same transaction as its outputs and the consumed Kafka offset, and never changes '
    'afterwards.';
COMMENT ON COLUMN genq.jobs.status IS
    'queued (waiting for a retry), running (an attempt is rendering), succeeded, failed or '
    'cancelled (terminal). cancelled: a CancelRequest (genq cancel) stopped it before it ended '
    '(error_code cancelled, error its reason; its completion event says FAILED with error.code '
    'cancelled); it is neither a success nor a failure in failure rates.';
ALTER TABLE genq.job_attempts DROP CONSTRAINT job_attempts_status_check;
ALTER TABLE genq.job_attempts ADD CONSTRAINT job_attempts_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'cancelled'));
COMMENT ON COLUMN genq.job_attempts.status IS
    'running, succeeded, failed, abandoned (a later attempt started while this one was still '
    'marked running: its worker died or lost the partition), or cancelled (the job was '
    'cancelled during this attempt: its prompt was removed from ComfyUI''s queue or '
    'interrupted).';

CREATE TABLE genq.cancels (
    job_id          uuid        PRIMARY KEY,
    requested_at    timestamptz NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    requested_by    text        NOT NULL DEFAULT '',
    source          text,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    recorded_by     text,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE genq.cancels IS
    'One row per cancelled job id: the latest CancelRequest read from the cancel topic (every '
    'worker records what it reads; a repeat changes nothing). A cancel applies to a job that '
    'has not ended (and whose source matches, when the cancel names one): see genq.jobs.status '
    '= cancelled. A row for a job that ended before changes nothing.';
COMMENT ON COLUMN genq.cancels.job_id IS 'The job to cancel (CancelRequest.job_id).';
COMMENT ON COLUMN genq.cancels.requested_at IS 'When the cancel was asked for (its clock).';
COMMENT ON COLUMN genq.cancels.reason IS 'Why, for people; also the cancelled job''s error.';
COMMENT ON COLUMN genq.cancels.requested_by IS 'Who asked: a service or tenant.';
COMMENT ON COLUMN genq.cancels.source IS
    'NULL: the cancel applies to the job whatever its source; else only if genq.jobs.source '
    'is this (a tenant cancels its own jobs only).';
COMMENT ON COLUMN genq.cancels.kafka_topic IS 'The cancel topic the message was read from.';
COMMENT ON COLUMN genq.cancels.kafka_partition IS 'Its partition.';
COMMENT ON COLUMN genq.cancels.kafka_offset IS
    'Its offset: of two messages for the same job, the later one is kept (as compaction does).';
COMMENT ON COLUMN genq.cancels.recorded_by IS 'The worker that recorded the row (or its update).';
COMMENT ON COLUMN genq.cancels.recorded_at IS 'When the row was recorded or last updated.';

-- Cancels read from Kafka, recorded in one statement: a JSON array of objects with job_id,
-- requested_at (ms), reason, requested_by, source, kafka_topic, kafka_partition,
-- kafka_offset. Idempotent: a message recorded again (by this worker after a restart, by
-- every other worker) changes nothing; of two messages for the same job, the later one in
-- its partition wins. Returns the rows written.
CREATE FUNCTION genq.cancels_record(p_cancels jsonb, p_worker text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO genq.cancels AS c (job_id, requested_at, reason, requested_by, source,
                                   kafka_topic, kafka_partition, kafka_offset, recorded_by)
    SELECT DISTINCT ON (x.job_id) x.job_id, coalesce(genq.ms_to_ts(x.requested_at), now()),
           coalesce(x.reason, ''), coalesce(x.requested_by, ''), x.source, x.kafka_topic,
           x.kafka_partition, x.kafka_offset, p_worker
    FROM jsonb_to_recordset(coalesce(p_cancels, '[]'::jsonb)) AS x(
        job_id uuid, requested_at bigint, reason text, requested_by text, source text,
        kafka_topic text, kafka_partition integer, kafka_offset bigint)
    WHERE x.job_id IS NOT NULL
    ORDER BY x.job_id, x.kafka_offset DESC NULLS LAST
    ON CONFLICT (job_id) DO UPDATE SET requested_at = EXCLUDED.requested_at,
        reason = EXCLUDED.reason, requested_by = EXCLUDED.requested_by,
        source = EXCLUDED.source, kafka_topic = EXCLUDED.kafka_topic,
        kafka_partition = EXCLUDED.kafka_partition, kafka_offset = EXCLUDED.kafka_offset,
        recorded_by = EXCLUDED.recorded_by, recorded_at = now()
    WHERE (c.kafka_topic IS NOT DISTINCT FROM EXCLUDED.kafka_topic
           AND c.kafka_partition IS NOT DISTINCT FROM EXCLUDED.kafka_partition
           AND EXCLUDED.kafka_offset > c.kafka_offset)
       OR ((c.kafka_topic IS DISTINCT FROM EXCLUDED.kafka_topic
            OR c.kafka_partition IS DISTINCT FROM EXCLUDED.kafka_partition)
           AND EXCLUDED.requested_at > c.requested_at);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION genq.cancels_record(jsonb, text) IS
    'Worker: record cancels read from the cancel topic (idempotent).';

-- The cancel that applies to a job of the given source, if any.
CREATE FUNCTION genq.cancel_for(p_job_id uuid, p_source text) RETURNS genq.cancels
LANGUAGE sql STABLE AS $$
    SELECT * FROM genq.cancels c
    WHERE c.job_id = p_job_id AND (c.source IS NULL OR c.source = coalesce(p_source, ''))
$$;
COMMENT ON FUNCTION genq.cancel_for(uuid, text) IS
    'The recorded cancel that applies to a job with this source (NULL row if none).';

-- attempt_begin as in 0003, and a new outcome:
--   cancelled  a cancel that applies to the job is recorded (genq.cancels): no attempt is
--              made and nothing changes; the caller records the job as cancelled. attempt
--              is the attempts made so far; prev_prompt_id is the latest attempt's prompt
--              when it is still marked running (it may be in ComfyUI: remove it there);
--              cancel holds {reason, requested_by, requested_at}.
-- A job already cancelled is terminal like a succeeded or failed one.
DROP FUNCTION genq.attempt_begin(uuid, jsonb, text, integer, text, text, bigint, text, text,
                                 integer, bigint, bigint, boolean, text);
CREATE FUNCTION genq.attempt_begin(
    p_job_id uuid, p_request jsonb, p_model text, p_max_attempts integer, p_worker text,
    p_prompt_id text, p_started_ms bigint, p_group text, p_topic text, p_partition integer,
    p_offset bigint, p_next_offset bigint, p_force boolean, p_cache_key text)
RETURNS TABLE (outcome text, attempt integer, prev_prompt_id text, prev_started_ms bigint,
               outputs jsonb, cancel jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    j genq.jobs%ROWTYPE;
    c genq.cancels%ROWTYPE;
    n integer;
    v_src uuid;
    v_out jsonb;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- A row to lock, even for a job never seen: two workers holding the same job (a
    -- duplicate publish) then take turns here.
    INSERT INTO genq.jobs (job_id, status, attempts, kafka_topic, kafka_partition, kafka_offset)
    VALUES (p_job_id, 'queued', 0, p_topic, p_partition, p_offset)
    ON CONFLICT (job_id) DO NOTHING;
    SELECT * INTO j FROM genq.jobs WHERE job_id = p_job_id FOR UPDATE;
    IF j.status IN ('succeeded', 'failed', 'cancelled') THEN
        PERFORM genq.offset_move(p_group, p_topic, p_partition, p_offset, p_next_offset);
        RETURN QUERY SELECT 'terminal'::text, j.attempts, j.comfy_prompt_id,
                            genq.ts_to_ms(j.started_at), NULL::jsonb, NULL::jsonb;
        RETURN;
    END IF;
    SELECT * INTO c FROM genq.cancel_for(p_job_id, coalesce(p_request->>'source', j.source));
    IF c.job_id IS NOT NULL THEN
        RETURN QUERY SELECT 'cancelled'::text, j.attempts,
                            CASE WHEN j.status = 'running' THEN j.comfy_prompt_id END,
                            genq.ts_to_ms(j.started_at), NULL::jsonb,
                            jsonb_build_object('reason', c.reason, 'requested_by',
                                               c.requested_by, 'requested_at',
                                               genq.ts_to_ms(c.requested_at));
        RETURN;
    END IF;
    IF p_cache_key IS NOT NULL AND j.attempts = 0 THEN
        -- The newest succeeded job with the key and every output still recorded.
        SELECT s.job_id INTO v_src FROM genq.jobs s
        WHERE s.cache_key = p_cache_key AND s.status = 'succeeded' AND s.job_id <> p_job_id
          AND EXISTS (SELECT 1 FROM genq.job_outputs o WHERE o.job_id = s.job_id)
        ORDER BY s.finished_at DESC LIMIT 1;
        IF v_src IS NOT NULL THEN
            SELECT jsonb_agg(jsonb_build_object('uri', o.uri, 'sha256', o.sha256,
                                                'bytes', o.bytes, 'width', o.width,
                                                'height', o.height, 'mime', o.mime)
                             ORDER BY o.idx)
            INTO v_out FROM genq.job_outputs o WHERE o.job_id = v_src;
            RETURN QUERY SELECT 'cached'::text, 0, v_src::text, NULL::bigint, v_out,
                                NULL::jsonb;
            RETURN;
        END IF;
    END IF;
    IF j.status = 'running' AND j.comfy_prompt_id IS NOT NULL AND NOT p_force THEN
        RETURN QUERY SELECT 'probe'::text, j.attempts, j.comfy_prompt_id,
                            genq.ts_to_ms(j.started_at), NULL::jsonb, NULL::jsonb;
        RETURN;
    END IF;
    IF j.attempts >= p_max_attempts THEN
        RETURN QUERY SELECT 'exhausted'::text, j.attempts, j.comfy_prompt_id,
                            genq.ts_to_ms(j.started_at), NULL::jsonb, NULL::jsonb;
        RETURN;
    END IF;
    n := j.attempts + 1;
    UPDATE genq.jobs SET status = 'running', attempts = n,
        started_at = coalesce(genq.ms_to_ts(p_started_ms), now()),
        worker_id = p_worker, comfy_prompt_id = p_prompt_id, kafka_topic = p_topic,
        kafka_partition = p_partition, kafka_offset = p_offset, cache_key = p_cache_key,
        updated_at = now()
    WHERE job_id = p_job_id;
    IF p_request IS NOT NULL THEN
        PERFORM genq.job_apply_request(p_job_id, p_request, p_model);
    END IF;
    UPDATE genq.job_attempts SET status = 'abandoned', finished_at = now()
    WHERE job_id = p_job_id AND attempt <> n AND status = 'running';
    INSERT INTO genq.job_attempts AS a (job_id, attempt, worker_id, comfy_prompt_id, status,
                                        started_at)
    VALUES (p_job_id, n, p_worker, p_prompt_id, 'running',
            coalesce(genq.ms_to_ts(p_started_ms), now()))
    ON CONFLICT (job_id, attempt) DO UPDATE SET worker_id = EXCLUDED.worker_id,
        comfy_prompt_id = EXCLUDED.comfy_prompt_id, status = 'running',
        started_at = EXCLUDED.started_at, finished_at = NULL, queue_ms = NULL,
        render_ms = NULL, error_code = NULL, error = NULL;
    RETURN QUERY SELECT 'begun'::text, n, j.comfy_prompt_id, genq.ts_to_ms(j.started_at),
                        NULL::jsonb, NULL::jsonb;
END $$;
COMMENT ON FUNCTION genq.attempt_begin(uuid, jsonb, text, integer, text, text, bigint, text,
                                       text, integer, bigint, bigint, boolean, text) IS
    'Worker: start an attempt (or say why not: terminal, cancelled, probe, exhausted, cached), '
    'in one statement.';

-- attempt_fail as in 0003; a cancelled job is terminal too.
CREATE OR REPLACE FUNCTION genq.attempt_fail(p_job_id uuid, p_attempt integer, p_code text,
                                             p_error text, p_finished_ms bigint,
                                             p_queue_ms bigint, p_render_ms bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE genq.jobs SET status = 'queued', error_code = p_code, error = p_error,
        error_retryable = true, updated_at = now()
    WHERE job_id = p_job_id AND status NOT IN ('succeeded', 'failed', 'cancelled');
    INSERT INTO genq.job_attempts AS a (job_id, attempt, status, finished_at, queue_ms,
                                        render_ms, error_code, error)
    SELECT p_job_id, p_attempt, 'failed', coalesce(genq.ms_to_ts(p_finished_ms), now()),
           p_queue_ms, p_render_ms, p_code, p_error
    WHERE EXISTS (SELECT 1 FROM genq.jobs WHERE job_id = p_job_id)
    ON CONFLICT (job_id, attempt) DO UPDATE SET status = 'failed',
        finished_at = EXCLUDED.finished_at, queue_ms = EXCLUDED.queue_ms,
        render_ms = EXCLUDED.render_ms, error_code = EXCLUDED.error_code,
        error = EXCLUDED.error
    WHERE a.status NOT IN ('succeeded', 'cancelled');
END $$;

-- job_finish as in 0003, with the status `cancelled` (p_result status "cancelled") and
-- p_result no_attempt = true: the job ended while no attempt of its own was running (it was
-- cancelled while waiting for its first attempt or for a retry): the attempts made so far
-- are kept as they are, and an attempt still marked running (a dead worker's) is abandoned.
CREATE OR REPLACE FUNCTION genq.job_finish(
    p_job_id uuid, p_request jsonb, p_result jsonb, p_outputs jsonb,
    p_group text, p_topic text, p_partition integer, p_offset bigint, p_next_offset bigint,
    p_claimer text, p_ev_topic text, p_ev_payload bytea, p_ev_headers jsonb,
    p_dlq_topic text, p_dlq_payload bytea, p_dlq_headers jsonb)
RETURNS TABLE (already boolean, ev_id bigint, dlq_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    j genq.jobs%ROWTYPE;
    v_attempt integer := coalesce((p_result->>'attempt')::integer, 0);
    v_status text := p_result->>'status';
    v_hit boolean := p_result->>'cache_source' IS NOT NULL;
    v_no_attempt boolean := coalesce((p_result->>'no_attempt')::boolean, false);
    v_ev bigint;
    v_dlq bigint;
BEGIN
    INSERT INTO genq.jobs (job_id, status, attempts, kafka_topic, kafka_partition, kafka_offset)
    VALUES (p_job_id, 'queued', 0, p_topic, p_partition, p_offset)
    ON CONFLICT (job_id) DO NOTHING;
    SELECT * INTO j FROM genq.jobs WHERE job_id = p_job_id FOR UPDATE;
    IF j.status IN ('succeeded', 'failed', 'cancelled') THEN
        PERFORM genq.offset_move(p_group, p_topic, p_partition, p_offset, p_next_offset);
        RETURN QUERY SELECT true, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF p_request IS NOT NULL THEN
        PERFORM genq.job_apply_request(p_job_id, p_request, p_result->>'model');
    END IF;
    IF v_hit THEN
        v_attempt := 0;
    END IF;
    IF v_no_attempt THEN
        v_attempt := j.attempts;
    END IF;
    UPDATE genq.jobs SET status = v_status, attempts = v_attempt,
        finished_at = coalesce(genq.ms_to_ts((p_result->>'finished_at')::bigint), now()),
        queue_ms = (p_result->>'queue_ms')::bigint,
        render_ms = (p_result->>'render_ms')::bigint,
        total_ms = (p_result->>'total_ms')::bigint,
        worker_id = coalesce(p_result->>'worker_id', worker_id),
        model = coalesce(model, p_result->>'model'),
        source = coalesce(source, p_result->>'source'),
        error_code = p_result->>'error_code', error = p_result->>'error',
        error_retryable = (p_result->>'error_retryable')::boolean,
        lane = coalesce(p_result->>'lane', lane),
        sched_wait_ms = coalesce((p_result->>'sched_wait_ms')::bigint, sched_wait_ms),
        cache_key = coalesce(p_result->>'cache_key', cache_key),
        cache_hit = v_hit,
        cache_source = (p_result->>'cache_source')::uuid,
        traceparent = coalesce(p_result->>'traceparent', traceparent),
        kafka_topic = coalesce(kafka_topic, p_topic),
        kafka_partition = coalesce(kafka_partition, p_partition),
        kafka_offset = coalesce(kafka_offset, p_offset),
        updated_at = now()
    WHERE job_id = p_job_id;
    DELETE FROM genq.job_outputs WHERE job_id = p_job_id;
    INSERT INTO genq.job_outputs (job_id, idx, uri, sha256, bytes, width, height, mime)
    SELECT p_job_id, (o.ord - 1)::integer, o.v->>'uri', o.v->>'sha256', (o.v->>'bytes')::bigint,
           nullif((o.v->>'width')::integer, 0), nullif((o.v->>'height')::integer, 0),
           o.v->>'mime'
    FROM jsonb_array_elements(coalesce(p_outputs, '[]'::jsonb)) WITH ORDINALITY AS o(v, ord);
    IF v_no_attempt THEN
        UPDATE genq.job_attempts SET status = 'abandoned', finished_at = now()
        WHERE job_id = p_job_id AND status = 'running';
    ELSIF v_attempt >= 1 THEN
        UPDATE genq.job_attempts SET status = 'abandoned', finished_at = now()
        WHERE job_id = p_job_id AND attempt <> v_attempt AND status = 'running';
        INSERT INTO genq.job_attempts AS a (job_id, attempt, worker_id, status, finished_at,
                                            queue_ms, render_ms, error_code, error)
        VALUES (p_job_id, v_attempt, p_result->>'worker_id', v_status,
                coalesce(genq.ms_to_ts((p_result->>'finished_at')::bigint), now()),
                (p_result->>'queue_ms')::bigint, (p_result->>'render_ms')::bigint,
                p_result->>'error_code', p_result->>'error')
        ON CONFLICT (job_id, attempt) DO UPDATE SET
            worker_id = coalesce(EXCLUDED.worker_id, a.worker_id), status = EXCLUDED.status,
            finished_at = EXCLUDED.finished_at, queue_ms = EXCLUDED.queue_ms,
            render_ms = EXCLUDED.render_ms, error_code = EXCLUDED.error_code,
            error = EXCLUDED.error;
    END IF;
    IF p_ev_payload IS NOT NULL THEN
        INSERT INTO genq.outbox (topic, msg_key, payload, headers, job_id, claimed_by, claimed_at)
        VALUES (p_ev_topic, p_job_id::text, p_ev_payload, coalesce(p_ev_headers, '{}'::jsonb),
                p_job_id, p_claimer, CASE WHEN p_claimer IS NULL THEN NULL ELSE now() END)
        RETURNING id INTO v_ev;
    END IF;
    IF p_dlq_payload IS NOT NULL THEN
        INSERT INTO genq.outbox (topic, msg_key, payload, headers, job_id, claimed_by, claimed_at)
        VALUES (p_dlq_topic, p_job_id::text, p_dlq_payload, coalesce(p_dlq_headers, '{}'::jsonb),
                p_job_id, p_claimer, CASE WHEN p_claimer IS NULL THEN NULL ELSE now() END)
        RETURNING id INTO v_dlq;
    END IF;
    PERFORM genq.offset_move(p_group, p_topic, p_partition, p_offset, p_next_offset);
    RETURN QUERY SELECT false, v_ev, v_dlq;
END $$;

-- The analysts' views: a cancelled job is counted apart, in neither the successes nor the
-- failures (so not in failure_rate), and not in flight. Columns are added at the end.
CREATE OR REPLACE VIEW genq.model_stats AS
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
    max(finished_at)                                          AS last_finished_at,
    count(*) FILTER (WHERE status = 'cancelled')              AS cancelled
FROM genq.jobs
GROUP BY model;
COMMENT ON COLUMN genq.model_stats.jobs IS 'Jobs recorded, in any state (cancelled included).';
COMMENT ON COLUMN genq.model_stats.failure_rate IS
    'failed / (succeeded + failed), 0..1; NULL before any job finished. Cancelled jobs are '
    'not counted.';
COMMENT ON COLUMN genq.model_stats.cancelled IS 'Jobs cancelled (genq cancel) before they ended.';

CREATE OR REPLACE VIEW genq.hourly_stats AS
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
    sum(render_ms) FILTER (WHERE status = 'succeeded')        AS render_ms_sum,
    count(*) FILTER (WHERE status = 'cancelled')              AS cancelled
FROM genq.jobs
WHERE finished_at IS NOT NULL
GROUP BY 1, 2;
COMMENT ON COLUMN genq.hourly_stats.jobs IS 'Jobs that finished in this hour (cancelled included).';
COMMENT ON COLUMN genq.hourly_stats.cancelled IS 'Of those, cancelled.';

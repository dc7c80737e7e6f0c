-- 0003: the worker's writes as SQL functions, one statement (and one transaction) each,
-- and the request as received.
--
-- A worker sends these statements pipelined on a non-blocking connection, so a job costs
-- one round trip to begin an attempt and one to record its end, whatever the number of rows
-- involved; the decisions that need a row lock (is the job already terminal? is an earlier
-- attempt still rendering?) are taken here, under that lock.
--
-- Writes whose loss in a database crash costs nothing but a repeat run with
-- synchronous_commit off (the start of an attempt, a failed attempt, deleting published
-- outbox rows): they are visible at once to every other session, and a worker crash (the
-- common case) loses none of them. The terminal record is committed synchronously.

ALTER TABLE genq.jobs ADD COLUMN request jsonb;
COMMENT ON COLUMN genq.jobs.request IS
    'The request as the worker received it (every GenerationRequest field, with the inline '
    'workflow_json and overrides), as a JSON object with the .avsc field names; what '
    '`genq replay jobs` publishes again. NULL for jobs recorded before genq 0003 and for '
    'messages that could not be decoded.';

-- Scheduling and the result cache, as the job record shows them.
ALTER TABLE genq.jobs ADD COLUMN lane text;
ALTER TABLE genq.jobs ADD COLUMN sched_wait_ms bigint;
ALTER TABLE genq.jobs ADD COLUMN cache_key text;
ALTER TABLE genq.jobs ADD COLUMN cache_hit boolean NOT NULL DEFAULT false;
ALTER TABLE genq.jobs ADD COLUMN cache_source uuid;
CREATE INDEX jobs_cache_key_idx ON genq.jobs (cache_key, finished_at)
    WHERE status = 'succeeded' AND cache_key IS NOT NULL;
COMMENT ON COLUMN genq.jobs.lane IS
    'The priority lane (GENQ_LANES) the request came in on; NULL when lanes are not used.';
COMMENT ON COLUMN genq.jobs.sched_wait_ms IS
    'Milliseconds the worker held the job ready while it rendered others (summed over '
    'attempts): the cost of its scheduling choices (lanes, tenant turns, model affinity) and '
    'of a busy ComfyUI.';
COMMENT ON COLUMN genq.jobs.cache_key IS
    'sha256 of the workflow as bound for ComfyUI (its output prefix made job-neutral) and the '
    'worker''s cache_salt: two jobs with the same key render the same images. NULL when the '
    'cache was off for the job.';
COMMENT ON COLUMN genq.jobs.cache_hit IS
    'true: answered from the outputs of an earlier job with the same cache_key, without a '
    'render (attempts 0, render_ms 0).';
COMMENT ON COLUMN genq.jobs.cache_source IS 'cache_hit: the job whose outputs were reused.';
ALTER TABLE genq.jobs ADD COLUMN traceparent text;
COMMENT ON COLUMN genq.jobs.traceparent IS
    'The W3C traceparent header the request carried (carried on to its completion event), '
    'NULL when it had none: join with your tracing backend on its trace id '
    '(split_part(traceparent, ''-'', 2)).';

-- An outbox row that cannot be published (a dead letter larger than the producer may send,
-- a topic that refuses it) is tried again after a while, then parked: never in a tight loop,
-- never lost, and counted (genq_outbox_parked, alert GenqOutboxParked).
ALTER TABLE genq.outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE genq.outbox ADD COLUMN last_error text;
ALTER TABLE genq.outbox ADD COLUMN parked_at timestamptz;
CREATE INDEX outbox_parked_at_idx ON genq.outbox (parked_at) WHERE parked_at IS NOT NULL;
COMMENT ON COLUMN genq.outbox.attempts IS 'Failed attempts to publish the row.';
COMMENT ON COLUMN genq.outbox.last_error IS 'Why the last attempt failed.';
COMMENT ON COLUMN genq.outbox.parked_at IS
    'When the row was set aside after too many failed attempts (NULL: still published). '
    'A parked row stays until an operator fixes the cause and clears parked_at, or deletes it.';

-- ms since the epoch <-> timestamptz, NULL for NULL or 0 ("unknown").
CREATE FUNCTION genq.ms_to_ts(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN ms IS NULL OR ms = 0 THEN NULL
                                         ELSE to_timestamp(ms::double precision / 1000) END $$;
CREATE FUNCTION genq.ts_to_ms(ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT round(extract(epoch FROM ts) * 1000)::bigint $$;

-- Moves a group's stored offset of a partition forward (never back). next_offset > 0 stores
-- it; 0 stores offset + 1 (the message was the last one in flight); < 0 or NULL moves
-- nothing (an older message is still in flight, or the partition is not the caller's).
CREATE FUNCTION genq.offset_move(p_group text, p_topic text, p_partition integer,
                                 p_offset bigint, p_next_offset bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_next bigint;
BEGIN
    IF p_group IS NULL OR p_topic IS NULL OR p_next_offset IS NULL OR p_next_offset < 0 THEN
        RETURN;
    END IF;
    IF p_next_offset = 0 THEN
        IF p_offset IS NULL OR p_offset < 0 THEN
            RETURN;
        END IF;
        v_next := p_offset + 1;
    ELSE
        v_next := p_next_offset;
    END IF;
    INSERT INTO genq.consumer_offsets AS o (consumer_group, topic, kafka_partition, next_offset)
    VALUES (p_group, p_topic, p_partition, v_next)
    ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
        SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now();
END $$;

-- Writes the request's columns (and the request itself) into a job's row.
CREATE FUNCTION genq.job_apply_request(p_job_id uuid, p_request jsonb, p_model text)
RETURNS void LANGUAGE sql AS $$
    UPDATE genq.jobs SET
        request = p_request,
        max_attempts = nullif((p_request->>'max_attempts')::integer, 0),
        model = coalesce(p_request->>'model', p_model, model),
        workflow = p_request->>'workflow',
        prompt = p_request->>'prompt',
        negative_prompt = p_request->>'negative_prompt',
        width = (p_request->>'width')::integer,
        height = (p_request->>'height')::integer,
        seed = (p_request->>'seed')::bigint,
        steps = (p_request->>'steps')::integer,
        cfg = (p_request->>'cfg')::double precision,
        sampler = p_request->>'sampler',
        scheduler = p_request->>'scheduler',
        batch_size = (p_request->>'batch_size')::integer,
        priority = (p_request->>'priority')::integer,
        source = p_request->>'source',
        timeout_s = nullif((p_request->>'timeout_s')::integer, 0),
        metadata = coalesce(p_request->'metadata', '{}'::jsonb),
        submitted_at = coalesce(submitted_at, genq.ms_to_ts((p_request->>'submitted_at')::bigint))
    WHERE job_id = p_job_id
$$;

-- The start of an attempt, or why there is none. Outcomes:
--   begun      attempt n is recorded as running with p_prompt_id (the row is created if new);
--   terminal   the job already has its terminal record: the message is done (its offset
--              moves as p_next_offset says) and nothing else changes;
--   probe      an earlier attempt (prev_prompt_id) is recorded as running and may still be
--              in ComfyUI: ask it, then call again with p_force to start a new one;
--   exhausted  max_attempts attempts were made: nothing changes (the caller records the
--              failure);
--   cached     (p_cache_key given, no attempt made yet) a succeeded job with the same key has
--              outputs: prev_prompt_id is that job's id, outputs its outputs (as job_finish
--              takes them); nothing changes until the caller records the hit.
CREATE FUNCTION genq.attempt_begin(
    p_job_id uuid, p_request jsonb, p_model text, p_max_attempts integer, p_worker text,
    p_prompt_id text, p_started_ms bigint, p_group text, p_topic text, p_partition integer,
    p_offset bigint, p_next_offset bigint, p_force boolean, p_cache_key text)
RETURNS TABLE (outcome text, attempt integer, prev_prompt_id text, prev_started_ms bigint,
               outputs jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    j genq.jobs%ROWTYPE;
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
    IF j.status IN ('succeeded', 'failed') THEN
        PERFORM genq.offset_move(p_group, p_topic, p_partition, p_offset, p_next_offset);
        RETURN QUERY SELECT 'terminal'::text, j.attempts, j.comfy_prompt_id,
                            genq.ts_to_ms(j.started_at), NULL::jsonb;
        RETURN;
    END IF;
    IF p_cache_key IS NOT NULL AND j.attempts = 0 THEN
        -- The newest succeeded job with the key and every output still recorded.
        SELECT c.job_id INTO v_src FROM genq.jobs c
        WHERE c.cache_key = p_cache_key AND c.status = 'succeeded' AND c.job_id <> p_job_id
          AND EXISTS (SELECT 1 FROM genq.job_outputs o WHERE o.job_id = c.job_id)
        ORDER BY c.finished_at DESC LIMIT 1;
        IF v_src IS NOT NULL THEN
            SELECT jsonb_agg(jsonb_build_object('uri', o.uri, 'sha256', o.sha256,
                                                'bytes', o.bytes, 'width', o.width,
                                                'height', o.height, 'mime', o.mime)
                             ORDER BY o.idx)
            INTO v_out FROM genq.job_outputs o WHERE o.job_id = v_src;
            RETURN QUERY SELECT 'cached'::text, 0, v_src::text, NULL::bigint, v_out;
            RETURN;
        END IF;
    END IF;
    IF j.status = 'running' AND j.comfy_prompt_id IS NOT NULL AND NOT p_force THEN
        RETURN QUERY SELECT 'probe'::text, j.attempts, j.comfy_prompt_id,
                            genq.ts_to_ms(j.started_at), NULL::jsonb;
        RETURN;
    END IF;
    IF j.attempts >= p_max_attempts THEN
        RETURN QUERY SELECT 'exhausted'::text, j.attempts, j.comfy_prompt_id,
                            genq.ts_to_ms(j.started_at), NULL::jsonb;
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
                        NULL::jsonb;
END $$;

-- Records that a worker took over a running attempt of another (adoption after a crash).
CREATE FUNCTION genq.attempt_adopt(p_job_id uuid, p_attempt integer, p_worker text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE genq.jobs SET worker_id = p_worker, updated_at = now()
    WHERE job_id = p_job_id AND attempts = p_attempt AND status = 'running';
    UPDATE genq.job_attempts SET worker_id = p_worker
    WHERE job_id = p_job_id AND attempt = p_attempt AND status = 'running';
END $$;

-- An attempt that failed and will be retried: the job goes back to queued with the error,
-- the attempt row gets its end, error and durations. No offset moves.
CREATE FUNCTION genq.attempt_fail(p_job_id uuid, p_attempt integer, p_code text, p_error text,
                                  p_finished_ms bigint, p_queue_ms bigint, p_render_ms bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE genq.jobs SET status = 'queued', error_code = p_code, error = p_error,
        error_retryable = true, updated_at = now()
    WHERE job_id = p_job_id AND status NOT IN ('succeeded', 'failed');
    INSERT INTO genq.job_attempts AS a (job_id, attempt, status, finished_at, queue_ms,
                                        render_ms, error_code, error)
    SELECT p_job_id, p_attempt, 'failed', coalesce(genq.ms_to_ts(p_finished_ms), now()),
           p_queue_ms, p_render_ms, p_code, p_error
    WHERE EXISTS (SELECT 1 FROM genq.jobs WHERE job_id = p_job_id)
    ON CONFLICT (job_id, attempt) DO UPDATE SET status = 'failed',
        finished_at = EXCLUDED.finished_at, queue_ms = EXCLUDED.queue_ms,
        render_ms = EXCLUDED.render_ms, error_code = EXCLUDED.error_code,
        error = EXCLUDED.error
    WHERE a.status <> 'succeeded';
END $$;

-- The terminal record, in one transaction: the job's row (created if it was never begun),
-- its outputs, its attempt, the outbox messages announcing it, and the partition's offset.
-- A job already terminal is left as it is (already = true): only the offset moves, and no
-- message is written. p_result holds the GenerationCompleted fields: status ("succeeded" or
-- "failed"), attempt, finished_at (ms), queue_ms, render_ms, total_ms, worker_id, model,
-- source, error_code, error, error_retryable, and what the record adds: lane, sched_wait_ms,
-- cache_key, cache_source (a cache hit: no attempt is recorded), traceparent. p_outputs is an array of
-- {uri, sha256, bytes, width, height, mime}.
CREATE FUNCTION genq.job_finish(
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
    v_ev bigint;
    v_dlq bigint;
BEGIN
    INSERT INTO genq.jobs (job_id, status, attempts, kafka_topic, kafka_partition, kafka_offset)
    VALUES (p_job_id, 'queued', 0, p_topic, p_partition, p_offset)
    ON CONFLICT (job_id) DO NOTHING;
    SELECT * INTO j FROM genq.jobs WHERE job_id = p_job_id FOR UPDATE;
    IF j.status IN ('succeeded', 'failed') THEN
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
    IF v_attempt >= 1 THEN
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

-- A message that is not a usable request (it has no job id): kept in rejected_messages,
-- dead-lettered through the outbox the first time, its offset moved. first = false when the
-- same message was rejected before (a redelivery): then no new dead letter.
CREATE FUNCTION genq.message_reject(
    p_group text, p_topic text, p_partition integer, p_offset bigint, p_next_offset bigint,
    p_job_id uuid, p_reason text, p_error text, p_payload bytea, p_payload_bytes bigint,
    p_claimer text, p_dlq_topic text, p_dlq_payload bytea, p_dlq_headers jsonb)
RETURNS TABLE (first boolean, dlq_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_first boolean;
    v_dlq bigint;
BEGIN
    INSERT INTO genq.rejected_messages (topic, kafka_partition, kafka_offset, job_id, reason,
                                        error, payload, payload_bytes)
    VALUES (p_topic, p_partition, p_offset, p_job_id, p_reason, p_error, p_payload,
            p_payload_bytes)
    ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING;
    v_first := FOUND;
    IF v_first AND p_dlq_payload IS NOT NULL THEN
        INSERT INTO genq.outbox (topic, msg_key, payload, headers, job_id, claimed_by, claimed_at)
        VALUES (p_dlq_topic, NULL, p_dlq_payload, coalesce(p_dlq_headers, '{}'::jsonb),
                p_job_id, p_claimer, CASE WHEN p_claimer IS NULL THEN NULL ELSE now() END)
        RETURNING id INTO v_dlq;
    END IF;
    PERFORM genq.offset_move(p_group, p_topic, p_partition, p_offset, p_next_offset);
    RETURN QUERY SELECT v_first, v_dlq;
END $$;

-- Published outbox rows leave (Kafka acknowledged them). Losing this in a crash only means
-- publishing them again, which consumers see as the repeat they already handle.
CREATE FUNCTION genq.outbox_done(p_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    DELETE FROM genq.outbox WHERE id = ANY (p_ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Publishing failed: counted, the error kept, the row claimed again only after the retry
-- delay (its claimed_at is now), and parked after max_attempts.
CREATE FUNCTION genq.outbox_failed(p_ids bigint[], p_errors text[], p_max_attempts integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE genq.outbox o SET attempts = o.attempts + 1, last_error = f.err, claimed_at = now(),
        parked_at = CASE WHEN o.attempts + 1 >= p_max_attempts THEN now() END
    FROM unnest(p_ids, p_errors) AS f(id, err)
    WHERE o.id = f.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION genq.outbox_failed(bigint[], text[], integer) IS
    'Worker: outbox rows that failed to publish; parked after p_max_attempts.';

COMMENT ON FUNCTION genq.attempt_begin(uuid, jsonb, text, integer, text, text, bigint, text,
                                       text, integer, bigint, bigint, boolean, text) IS
    'Worker: start an attempt (or say why not: terminal, probe, exhausted, cached), in one '
    'statement.';
COMMENT ON FUNCTION genq.attempt_adopt(uuid, integer, text) IS
    'Worker: a running attempt was taken over by another worker after a crash.';
COMMENT ON FUNCTION genq.attempt_fail(uuid, integer, text, text, bigint, bigint, bigint) IS
    'Worker: an attempt failed and will be retried.';
COMMENT ON FUNCTION genq.job_finish(uuid, jsonb, jsonb, jsonb, text, text, integer, bigint,
                                    bigint, text, text, bytea, jsonb, text, bytea, jsonb) IS
    'Worker: the terminal record, its outputs, its outbox messages and the offset, at once.';
COMMENT ON FUNCTION genq.message_reject(text, text, integer, bigint, bigint, uuid, text, text,
                                        bytea, bigint, text, text, bytea, jsonb) IS
    'Worker: keep an unusable message, dead-letter it once, move the offset.';
COMMENT ON FUNCTION genq.outbox_done(bigint[]) IS 'Worker: delete published outbox rows.';
COMMENT ON FUNCTION genq.offset_move(text, text, integer, bigint, bigint) IS
    'Move a group''s stored offset of a partition forward (never back).';
COMMENT ON FUNCTION genq.job_apply_request(uuid, jsonb, text) IS
    'Write a request''s fields into its job row.';
COMMENT ON FUNCTION genq.ms_to_ts(bigint) IS 'Milliseconds since the epoch to timestamptz.';
COMMENT ON FUNCTION genq.ts_to_ms(timestamptz) IS 'timestamptz to milliseconds since the epoch.';

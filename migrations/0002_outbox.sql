-- 0002: the transactional outbox for completion events and dead letters.
--
-- A job's terminal record and the messages announcing it (its GenerationCompleted event
-- and, for poison or exhausted jobs, the dead letter) are written in one transaction; a
-- worker then publishes the rows and deletes them once Kafka acknowledged them. A row
-- whose worker died before that is published again by any worker after a while, so an
-- event is never lost, and a repeat always carries the recorded job id and attempt.

CREATE TABLE genq.outbox (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    msg_key     text,
    payload     bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    job_id      uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by  text,
    claimed_at  timestamptz
);
CREATE INDEX outbox_claimed_at_idx ON genq.outbox (claimed_at);

COMMENT ON TABLE genq.outbox IS
    'Messages (completion events, dead letters) written with the terminal record and not yet acknowledged by Kafka. Normally empty or nearly so.';
COMMENT ON COLUMN genq.outbox.id IS 'Row id, in insertion order.';
COMMENT ON COLUMN genq.outbox.topic IS 'Kafka topic the message goes to.';
COMMENT ON COLUMN genq.outbox.msg_key IS 'Message key (the job id), or NULL.';
COMMENT ON COLUMN genq.outbox.payload IS 'Message value: Avro single-object encoded event, or the original request bytes for a dead letter.';
COMMENT ON COLUMN genq.outbox.headers IS 'Message headers as a JSON object of strings.';
COMMENT ON COLUMN genq.outbox.job_id IS 'The job the message is about, when known.';
COMMENT ON COLUMN genq.outbox.created_at IS 'When the row was written (with the terminal record).';
COMMENT ON COLUMN genq.outbox.claimed_by IS 'Worker that is publishing the row.';
COMMENT ON COLUMN genq.outbox.claimed_at IS 'When it claimed the row; rows claimed long ago are published again by any worker.';

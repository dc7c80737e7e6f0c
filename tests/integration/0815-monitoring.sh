#!/usr/bin/env bash
# timeout: 600
# The Grafana dashboards and the PrometheusRule (tests/monitoring/run): JSON valid, every
# PromQL expression parsed by Prometheus's own parser (promtool) and naming only metrics genq (or KEDA,
# or kube-state-metrics) exports, promtool check rules and the alerts' unit tests (promtool
# test rules), every SQL query of the analysts' dashboard run against a migrated database
# holding a few jobs, and each bad fixture failing. promtool is fetched once (seconds).
source "$(dirname "$0")/lib.sh"
t_fresh_db
sql "INSERT INTO genq.jobs (job_id, status, attempts, model, source, prompt, submitted_at, started_at,
         finished_at, queue_ms, render_ms, total_ms, error_code, error, error_retryable)
     SELECT gen_random_uuid(), CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'succeeded' END, 1,
            CASE WHEN i % 2 = 0 THEN 'sd15.safetensors' ELSE 'sdxl.safetensors' END,
            CASE WHEN i % 3 = 0 THEN 'demo' ELSE 'genq-cli' END, 'p ' || i,
            now() - interval '2 hours', now() - interval '1 hour', now() - (i || ' minutes')::interval,
            100 * i, 1000 + 10 * i, 1200 + 110 * i,
            CASE WHEN i % 7 = 0 THEN 'out_of_memory' END, CASE WHEN i % 7 = 0 THEN 'CUDA out of memory' END,
            CASE WHEN i % 7 = 0 THEN true END
     FROM generate_series(1, 40) AS i" >/dev/null || fail "seeding jobs"
tests/monitoring/run --database-url "$GENQ_DATABASE_URL" >"$T_TMP/monitoring.log" 2>&1 ||
    { cat "$T_TMP/monitoring.log" >&2; fail "tests/monitoring/run"; }
note "$(grep -c '^ok ' "$T_TMP/monitoring.log") checks ok; $(grep 'PromQL expressions' "$T_TMP/monitoring.log" | head -1)"

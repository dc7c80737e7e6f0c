#!/usr/bin/env bash
# timeout: 180
# Fairness between tenants (the request's source): a big tenant's burst of 60 jobs is
# published first, then a small tenant's 4. The small tenant's jobs all finish while most of
# the burst is still waiting (FIFO would have run them last), and the record says how long
# each waited while others rendered (sched_wait_ms).
source "$(dirname "$0")/lib.sh"
t_fresh_db
t_fresh_names
export GENQ_PARTITIONS=3
url=$GENQ_COMFYUI_URL
produce() { "$GENQ" produce -m sd15.safetensors --width 64 --height 64 --steps 2 "$@" 2>>"$T_TMP/produce.log"; }
produce -p "burst [[sim:slow:step_ms=100]]" --source big -n 60 >/dev/null || fail "produce big"
produce -p "few [[sim:slow:step_ms=100]]" --source small -n 4 >/dev/null || fail "produce small"
t_worker w1 "$url"
t_wait 90 "the small tenant's jobs" sql_is 4 "SELECT count(*) FROM genq.jobs WHERE source = 'small' AND status = 'succeeded'"
big_done=$(sql "SELECT count(*) FROM genq.jobs WHERE source = 'big' AND status = 'succeeded'")
[ "$big_done" -le 20 ] || fail "$big_done of the big tenant's 60 jobs went before the small tenant's 4 were done"
t_wait 120 "all 64 jobs" sql_is 64 "SELECT count(*) FROM genq.jobs WHERE status = 'succeeded'"
t_stop_workers w1
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE sched_wait_ms IS NULL")" = 0 ] || fail "sched_wait_ms not recorded"
[ "$(sql "SELECT max(sched_wait_ms) > 0 FROM genq.jobs WHERE source = 'big'")" = t ] || fail "the burst recorded no wait"
note "the small tenant's 4 jobs were done after $big_done of the big tenant's 60"

#!/usr/bin/env bash
# timeout: 300
# Fault test: broker stopped and restarted mid-run, while 150 jobs flow through two
# workers (t_service_fault in lib.sh says what must hold at the end).
source "$(dirname "$0")/lib.sh"
t_service_fault kafka "broker"

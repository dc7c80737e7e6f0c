#!/usr/bin/env bash
# timeout: 300
# genq report over real jobs (succeeded on two models, failed ones, a prompt full of HTML),
# opened from file:// in headless Chromium (Debian's, through Selenium): no console error,
# every thumbnail resolves, the plots are there, no script runs and nothing loads from
# elsewhere; the hostile prompt is escaped; --model, --tenant and a range in the future filter.
# Screenshots go to $T_TMP/shots (to $GENQ_REPORT_SHOTS as well when set).
source "$(dirname "$0")/lib.sh"
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] ||
    { echo "skipped: no chromium/chromedriver (scripts/deps test installs them)"; exit 77; }
t_fresh_db
t_fresh_names
t_produce_n 12 report
# The demo's sizes too: these become thumbnails in the page.
for m in sd15.safetensors:512 sdxl.safetensors:1024; do
    "$GENQ" produce -p "a lighthouse at dusk" -m "${m%%:*}" --width "${m##*:}" --height "${m##*:}" \
        --steps 4 -n 2 >>"$T_TMP/ids.txt" 2>>"$T_TMP/produce.log" || fail "genq produce"
done
"$GENQ" produce -p '<script>alert("x")</script> & "quotes" <img src=x onerror=alert(1)>' -m sd15.safetensors \
    --width 64 --height 64 --steps 2 --source "tenant<b>" >>"$T_TMP/ids.txt" 2>>"$T_TMP/produce.log" || fail "genq produce"
"$GENQ" produce -w no-such-template -p "never rendered" -n 2 >>"$T_TMP/ids.txt" 2>>"$T_TMP/produce.log" || fail "genq produce"
t_worker w1 "$GENQ_COMFYUI_URL"
t_wait 180 "19 jobs" sql_is 19 "SELECT count(*) FROM genq.jobs WHERE status IN ('succeeded','failed')"
t_stop_workers w1
[ "$(sql "SELECT count(*) FROM genq.jobs WHERE status = 'failed' AND error_code = 'unknown_template'")" = 2 ] ||
    fail "expected 2 failed jobs"

"$GENQ" report --since -1h --until now --out "$T_TMP/report.html" >"$T_TMP/report.path" 2>"$T_TMP/report.log" ||
    fail "genq report"
[ "$(cat "$T_TMP/report.path")" = "$(readlink -f "$T_TMP/report.html")" ] || fail "genq report did not print the page's path"
grep -q "19 job(s), 17 succeeded, 2 failed; 17 output(s): 17 embedded" "$T_TMP/report.log" ||
    fail "unexpected summary: $(cat "$T_TMP/report.log")"
grep -qF '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;' "$T_TMP/report.html" ||
    fail "the hostile prompt is not escaped"
! grep -q '<script' "$T_TMP/report.html" || fail "a <script> in the page"
grep -qF 'tenant&lt;b&gt;' "$T_TMP/report.html" || fail "the tenant is not escaped"
grep -q 'unknown_template' "$T_TMP/report.html" || fail "the failure reason is missing"
/usr/bin/python3 tests/report/check_page.py "$T_TMP/report.html" --shots "$T_TMP/shots" --min-images 17 \
    --min-plots 4 >"$T_TMP/chromium.log" 2>&1 || { cat "$T_TMP/chromium.log" >&2; fail "the page in Chromium"; }
[ -s "$T_TMP/shots/report-full.png" ] || fail "no screenshot"
if [ -n "${GENQ_REPORT_SHOTS:-}" ]; then mkdir -p "$GENQ_REPORT_SHOTS" && cp "$T_TMP"/shots/*.png "$GENQ_REPORT_SHOTS/"; fi

# Filters: one model; a range where nothing finished.
"$GENQ" report --since -1h --model sdxl.safetensors --out "$T_TMP/sdxl.html" >/dev/null 2>"$T_TMP/sdxl.log" || fail "genq report --model"
sdxl=$(sql "SELECT count(*) FROM genq.jobs WHERE model = 'sdxl.safetensors' AND status = 'succeeded'")
[ "$(grep -c '<figure>' "$T_TMP/sdxl.html")" = "$sdxl" ] || fail "--model: $(grep -c '<figure>' "$T_TMP/sdxl.html") thumbnails, $sdxl sdxl jobs"
"$GENQ" report --since -1h --tenant 'tenant<b>' --out "$T_TMP/tenant.html" >/dev/null 2>&1 || fail "genq report --tenant"
[ "$(grep -c '<figure>' "$T_TMP/tenant.html")" = 1 ] || fail "--tenant: $(grep -c '<figure>' "$T_TMP/tenant.html") thumbnails, not 1"
"$GENQ" report --since 2999-01-01T00:00:00Z --until 2999-01-02 --out "$T_TMP/empty.html" >/dev/null 2>&1 || fail "genq report (empty range)"
grep -q "No job finished in this range" "$T_TMP/empty.html" || fail "an empty range is not said so"
rc=0
"$GENQ" report --since yesterday --out "$T_TMP/x.html" >/dev/null 2>&1 || rc=$?
[ "$rc" = 64 ] || fail "a bad --since: exit $rc, not 64 (usage)"
note "report: $(cat "$T_TMP/chromium.log" | tail -1)"

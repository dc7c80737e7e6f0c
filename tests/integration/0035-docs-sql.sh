#!/usr/bin/env bash
# timeout: 120
# Every SQL example in the README and docs/ runs against a freshly migrated schema (inside a
# transaction that is rolled back), so that an analyst's copy-paste never meets a renamed
# column or view.
source "$(dirname "$0")/lib.sh"
t_fresh_db
# One file per statement (a block may hold several, each after its comment), named after
# where it was found.
mkdir -p "$T_TMP/q"
/usr/bin/python3 - "$GENQ_ROOT" "$T_TMP/q" <<'PY'
import glob, os, re, sys
root, out = sys.argv[1], sys.argv[2]
n = 0
for path in [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md"))):
    text = open(path).read()
    for i, m in enumerate(re.finditer(r"```sql\n(.*?)```", text, re.S)):
        for j, stmt in enumerate(s for s in m.group(1).split(";") if re.search(r"^\s*[A-Za-z]", s, re.M)):
            n += 1
            name = f"{n:03d}_{os.path.relpath(path, root).replace('/', '_')}_block{i + 1}_stmt{j + 1}.sql"
            with open(os.path.join(out, name), "w") as f:
                f.write("BEGIN;\n" + stmt.strip() + ";\nROLLBACK;\n")
PY
n=0
for f in "$T_TMP"/q/*.sql; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    out=$(psql -qtAX -v ON_ERROR_STOP=1 "$GENQ_DATABASE_URL" -f "$f" 2>&1) ||
        fail "$(basename "$f" .sql) does not run against the migrated schema: $(head -c 400 <<<"$out")"$'\n'"$(cat "$f")"
done
[ "$n" -ge 8 ] || fail "only $n SQL statements found: the extraction is broken"
note "$n SQL statements from the README and docs/ run against the migrated schema"

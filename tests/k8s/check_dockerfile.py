#!/usr/bin/env python3
"""Checks the Dockerfile without a Docker engine (there is none on these machines).

  - two stages: a build stage and a small runtime stage, both on the same Debian release;
  - the build stage installs exactly the build packages scripts/deps installs here;
  - the runtime stage installs a Debian package for every shared library the genq binary
    built here needs (readelf NEEDED -> ldconfig -> dpkg -S), and each of its packages exists
    in this machine's apt sources (apt-cache);
  - the runtime runs as a numeric non-root user, with genq as its entrypoint.

usage: check_dockerfile.py [Dockerfile] [bin/genq]; exit 0 when all hold, 1 otherwise.
"""
import re
import shlex
import subprocess
import sys


def instructions(path):
    """[(INSTRUCTION, argument string)] with continuations joined and comments dropped."""
    out, cur = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def stages(ins):
    st = []
    for word, arg in ins:
        if word == "FROM":
            parts = arg.split()
            st.append({"image": parts[0], "name": parts[2] if len(parts) > 2 else None, "ins": []})
        elif st:
            st[-1]["ins"].append((word, arg))
    return st


def apt_packages(stage):
    pkgs = set()
    for word, arg in stage["ins"]:
        if word != "RUN":
            continue
        for cmd in re.split(r"&&|;", arg):
            toks = shlex.split(cmd)
            toks = [t for t in toks if "=" not in t or t.startswith("-")]  # drop VAR=x prefixes
            if "apt-get" in toks and "install" in toks:
                i = toks.index("install")
                pkgs.update(t for t in toks[i + 1:] if not t.startswith("-"))
    return pkgs


def deps_build_packages(path="scripts/deps"):
    text = open(path).read()
    m = re.search(r"build_pkgs=\(([^)]*)\)", text)
    return set(m.group(1).split())


def needed_packages(binary):
    """{soname: Debian package} for the binary's direct NEEDED entries."""
    dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn.stdout)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    found = {}
    for so in sonames:
        m = re.search(rf"^\s*{re.escape(so)} \(libc6,x86-64[^)]*\) => (\S+)", cache, re.M) or \
            re.search(rf"^\s*{re.escape(so)} .*=> (\S+)", cache, re.M)
        if not m:
            found[so] = None
            continue
        path = m.group(1)
        # With a merged /usr, dpkg knows a library under only one of /lib and /usr/lib.
        alt = path[4:] if path.startswith("/usr/lib/") else "/usr" + path
        r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if r.returncode != 0:
            r = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        found[so] = r.stdout.split(":")[0] if r.returncode == 0 else None
    return found


def main():
    dockerfile = sys.argv[1] if len(sys.argv) > 1 else "Dockerfile"
    binary = sys.argv[2] if len(sys.argv) > 2 else "bin/genq"
    errors = []
    st = stages(instructions(dockerfile))
    if len(st) < 2:
        errors.append(f"expected a build stage and a runtime stage, found {len(st)} stage(s)")
        return report(errors)
    build, run = st[0], st[-1]
    rel = {s["image"].split(":")[1].split("-")[0] if ":" in s["image"] else "" for s in (build, run)}
    if len(rel) != 1 or "" in rel:
        errors.append(f"build ({build['image']}) and runtime ({run['image']}) must pin the same "
                      "Debian release, or the runtime libraries differ from the ones linked")
    if "slim" not in run["image"] and "distroless" not in run["image"]:
        errors.append(f"runtime image {run['image']} is not a slim image")

    want_build = deps_build_packages()
    have_build = apt_packages(build)
    if want_build - have_build:
        errors.append(f"build stage lacks {sorted(want_build - have_build)} (scripts/deps build)")

    have_run = apt_packages(run)
    if any(p.endswith("-dev") or p == "build-essential" for p in have_run):
        errors.append(f"runtime stage installs build packages: {sorted(have_run)}")
    for so, pkg in sorted(needed_packages(binary).items()):
        if pkg is None:
            errors.append(f"{binary} needs {so}, which no Debian package here provides")
        elif pkg not in have_run and pkg != "libc6":
            errors.append(f"{binary} needs {so} from {pkg}, which the runtime stage does not install")
    for p in sorted(have_run):
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", p], capture_output=True)
        if r.returncode != 0:
            errors.append(f"runtime package {p} is not known to apt")

    users = [a for w, a in run["ins"] if w == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        errors.append("the runtime stage must end as a numeric non-root USER (runAsNonRoot)")
    ep = [a for w, a in run["ins"] if w == "ENTRYPOINT"]
    if not ep or "genq" not in ep[-1]:
        errors.append("the runtime stage's ENTRYPOINT must be genq")
    if not any(w == "COPY" and "--from=" + (build["name"] or "0") in a for w, a in run["ins"]):
        errors.append("the runtime stage must COPY the binary from the build stage")
    return report(errors, dockerfile, have_run)


def report(errors, dockerfile="Dockerfile", pkgs=()):
    for e in errors:
        print(f"FAIL {dockerfile}: {e}", file=sys.stderr)
    if not errors:
        print(f"ok   {dockerfile}: two stages, runtime packages {' '.join(sorted(pkgs))}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

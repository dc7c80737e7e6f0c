#!/usr/bin/env python3
"""Builds the Dockerfile's image without a Docker engine, then runs genq in it.

There is no Docker engine on these machines, so this plays the Dockerfile's instructions
itself, stage by stage, in chroots: `FROM debian:12-slim` is a Debian 12 minbase root made
by debootstrap (cached), RUN runs under /bin/sh in the chroot with the stage's ARG and ENV,
COPY copies from the build context (minus .dockerignore) or from an earlier stage, WORKDIR,
USER, ENTRYPOINT and CMD are recorded. Then, in the final stage's root, as its USER:
`genq --version`, `ldd` finds every library, and `genq worker --dump-config` reads a
configuration, so the runtime stage really carries what the binary needs.

Needs root (chroot, mounts) and debootstrap (`scripts/deps image`); Debian's mirror
is reached from the chroot. usage: image_build.py [--keep DIR] [Dockerfile]; exit 0 when
the image builds and genq runs in it.
"""
import argparse
import fnmatch
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_dockerfile import instructions  # noqa: E402

SUITES = {"debian:12-slim": "bookworm", "debian:bookworm-slim": "bookworm"}
MIRROR = "http://deb.debian.org/debian"
HOST_CA = os.environ.get("CURL_CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt"
HOST_CA_IN_ROOT = "/run/genq-host-ca.crt"


def log(msg):
    print(f"image_build: {msg}", file=sys.stderr, flush=True)


def base_tarball(suite, cache):
    tar = os.path.join(cache, f"rootfs-{suite}-minbase.tar")
    if not os.path.exists(tar):
        log(f"debootstrap {suite} (once, cached in {tar})")
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "root")
            subprocess.run(["debootstrap", "--variant=minbase", suite, root, MIRROR],
                           check=True, stdout=subprocess.DEVNULL)
            os.makedirs(cache, exist_ok=True)
            subprocess.run(["tar", "-C", root, "-cf", tar + ".tmp", "."], check=True)
            os.replace(tar + ".tmp", tar)
    return tar


class Stage:
    def __init__(self, image, name, root):
        self.image, self.name, self.root = image, name, root
        self.env, self.args, self.workdir, self.user = {}, {}, "/", "0"
        self.entrypoint, self.cmd = [], []
        self.key, self.cacheable, self.layer = "", True, None


def ignored(rel, patterns):
    for p in patterns:
        p = p.rstrip("/")
        if p.startswith("**/"):
            if any(fnmatch.fnmatch(part, p[3:]) for part in rel.split("/")):
                return True
        elif rel == p or rel.startswith(p + "/") or fnmatch.fnmatch(rel, p):
            return True
    return False


def copy_context(ctx, dest, patterns):
    for dirpath, dirnames, filenames in os.walk(ctx):
        rel_dir = os.path.relpath(dirpath, ctx)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d, patterns)]
        for f in filenames:
            rel = rel_dir + f
            if ignored(rel, patterns):
                continue
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copy2(os.path.join(ctx, rel), out, follow_symlinks=False)


def substitute(text, stage):
    vals = {**stage.args, **stage.env}
    for k in sorted(vals, key=len, reverse=True):
        text = text.replace("${" + k + "}", vals[k]).replace("$" + k, vals[k])
    return text


def chroot_run(stage, argv, user=None, env=None, check=True, capture=False):
    run_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", **stage.args, **stage.env, **(env or {})}
    cmd = ["chroot"]
    if user and user not in ("0", "root", "0:0"):
        cmd.append(f"--userspec={user}")
    cmd += [stage.root, "/bin/sh", "-c", f"cd {shlex.quote(stage.workdir)} && exec \"$@\"", "sh"]
    return subprocess.run(cmd + argv, env=run_env, check=check, text=True,
                          capture_output=capture)


class Mounts:
    def __init__(self, root):
        self.root, self.done = root, []

    def __enter__(self):
        for args, target in ((["-t", "proc", "proc"], "proc"), (["--bind", "/dev"], "dev")):
            path = os.path.join(self.root, target)
            subprocess.run(["mount", *args, path], check=True)
            self.done.append(path)
        shutil.copy("/etc/resolv.conf", os.path.join(self.root, "etc/resolv.conf"))
        # The host's trust store, for the HTTPS a RUN fetches (scripts/librdkafka): a machine
        # whose egress goes through a TLS-inspecting proxy trusts that proxy's CA, which a
        # fresh Debian root does not. Mounted for the RUN only, so no stage keeps it.
        self.ca = None
        if os.path.isfile(HOST_CA):
            path = os.path.join(self.root, HOST_CA_IN_ROOT.lstrip("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "a").close()
            subprocess.run(["mount", "--bind", "-o", "ro", HOST_CA, path], check=True)
            self.done.append(path)
            self.ca = path
        return self

    def env(self):
        return {"CURL_CA_BUNDLE": HOST_CA_IN_ROOT} if self.ca else {}

    def __exit__(self, *exc):
        for path in reversed(self.done):
            subprocess.run(["umount", "-l", path], check=False)
        if self.ca:
            os.unlink(self.ca)


# Layers, as Docker caches them: a RUN's result is kept under a key that chains every
# instruction before it (and the bytes each COPY brought in), and reused while that chain is
# unchanged. Only the layers before a stage's `COPY . ...`: after it the key changes with
# every edit. Without it every `make test` would reinstall the packages and rebuild
# librdkafka (5 minutes on 2 cores). Each stage keeps its top layer; the newest few stay.
LAYERS_KEPT = 4


def layer_key(prev, *parts):
    h = hashlib.sha256(prev.encode())
    for p in parts:
        h.update(b"\0" + p.encode())
    return h.hexdigest()[:32]


def copied_digest(ctx, srcs, frm, stages):
    if frm is not None:
        return next((s.key for i, s in enumerate(stages) if s.name == frm or str(i) == frm), "")
    if srcs == ["."]:
        return ""  # the stage stops caching here
    h = hashlib.sha256()
    for src in srcs:
        with open(os.path.join(ctx, src), "rb") as f:
            h.update(src.encode() + b"\0" + f.read())
    return h.hexdigest()


def save_layer(root, layer, below):
    """Keeps the root as `layer`; `below`, the stage's layer under it, goes (each is a whole
    root, not a difference: 800 MB for the build stage)."""
    os.makedirs(os.path.dirname(layer), exist_ok=True)
    subprocess.run(["tar", "-C", root, "-cf", layer + ".tmp", "."], check=True)
    os.replace(layer + ".tmp", layer)
    if below and below != layer and os.path.exists(below):
        os.unlink(below)
    d = os.path.dirname(layer)
    old = sorted((os.path.join(d, f) for f in os.listdir(d) if f.endswith(".tar")),
                 key=os.path.getmtime, reverse=True)[LAYERS_KEPT:]
    for f in old:
        os.unlink(f)


def build(dockerfile, ctx, work, cache, build_args):
    patterns = []
    di = os.path.join(ctx, ".dockerignore")
    if os.path.exists(di):
        patterns = [ln.strip() for ln in open(di) if ln.strip() and not ln.startswith("#")]
    stages, cur, global_args = [], None, {}
    for word, arg in instructions(dockerfile):
        if word == "ARG" and cur is None:
            k, _, v = arg.partition("=")
            global_args[k] = build_args.get(k, v)
            continue
        if word == "FROM":
            parts = arg.split()
            image = parts[0]
            if image not in SUITES:
                raise SystemExit(f"image_build: cannot emulate FROM {image} (only {sorted(SUITES)})")
            root = os.path.join(work, f"stage{len(stages)}")
            os.makedirs(root)
            base = base_tarball(SUITES[image], cache)
            subprocess.run(["tar", "-C", root, "-xf", base], check=True)
            cur = Stage(image, parts[2] if len(parts) > 2 else None, root)
            cur.key = layer_key("", "FROM", image, str(os.stat(base).st_mtime_ns))
            cur.cacheable = True
            stages.append(cur)
            log(f"stage {len(stages) - 1} ({cur.name or 'final'}): FROM {image}")
            continue
        if word in ("ARG", "ENV", "WORKDIR", "USER"):
            cur.key = layer_key(cur.key, word, arg)
        if word == "ARG":
            k, _, v = arg.partition("=")
            cur.args[k] = build_args.get(k, global_args.get(k, v))
        elif word == "ENV":
            k, _, v = arg.partition("=")
            cur.env[k] = substitute(v, cur)
        elif word == "WORKDIR":
            cur.workdir = substitute(arg, cur)
            os.makedirs(os.path.join(cur.root, cur.workdir.lstrip("/")), exist_ok=True)
        elif word == "COPY":
            toks = shlex.split(arg)
            frm = next((t.split("=", 1)[1] for t in toks if t.startswith("--from=")), None)
            toks = [t for t in toks if not t.startswith("--")]
            srcs, dest = toks[:-1], toks[-1]
            dest_abs = dest if dest.startswith("/") else os.path.join(cur.workdir, dest)
            dest_path = os.path.join(cur.root, dest_abs.lstrip("/"))
            cur.key = layer_key(cur.key, "COPY", arg, copied_digest(ctx, srcs, frm, stages))
            if frm is None and srcs == ["."]:
                copy_context(ctx, dest_path, patterns)
                # The whole context changes with every edit: what follows is rebuilt anyway.
                cur.cacheable = False
            elif frm is None:
                # Single files of the context, as Docker copies them: DEST is the file's new
                # path, or a directory when it ends with "/" (what the Dockerfile uses).
                for s in srcs:
                    src = os.path.abspath(os.path.join(ctx, s))
                    if not src.startswith(os.path.abspath(ctx) + os.sep) or not os.path.isfile(src):
                        raise SystemExit(f"image_build: COPY of a file in the context only: {arg}")
                    target = os.path.join(dest_path, os.path.basename(s)) if dest.endswith("/") \
                        else dest_path
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(src, target)
            else:
                src_stage = next(s for i, s in enumerate(stages) if s.name == frm or str(i) == frm)
                for s in srcs:
                    src = os.path.join(src_stage.root, s.lstrip("/"))
                    subprocess.run(["cp", "-a", src.rstrip("/") + "/." if os.path.isdir(src) else src,
                                    dest_path], check=True)
            log(f"COPY {arg}")
        elif word == "RUN":
            log(f"RUN {arg[:100]}{'...' if len(arg) > 100 else ''}")
            cur.key = layer_key(cur.key, "RUN", arg, repr(sorted({**cur.args, **cur.env}.items())))
            layer = os.path.join(cache, "image-layers", cur.key + ".tar")
            if cur.cacheable and os.path.exists(layer):
                log(f"  cached: {layer}")
                shutil.rmtree(cur.root)
                os.makedirs(cur.root)
                subprocess.run(["tar", "-C", cur.root, "-xf", layer], check=True)
                os.utime(layer)
                if cur.layer and cur.layer != layer and os.path.exists(cur.layer):
                    os.unlink(cur.layer)  # the layer below: only the top one is kept
                cur.layer = layer
                continue
            with Mounts(cur.root) as m:
                r = chroot_run(cur, ["/bin/sh", "-c", arg], user=cur.user, env=m.env(),
                               check=False, capture=True)
            if r.returncode != 0:
                tail = (r.stdout + r.stderr).strip().splitlines()[-30:]
                raise SystemExit("image_build: RUN failed (exit %d):\n%s"
                                 % (r.returncode, "\n".join(tail)))
            if cur.cacheable:
                save_layer(cur.root, layer, cur.layer)
                cur.layer = layer
        elif word == "USER":
            cur.user = substitute(arg, cur)
        elif word in ("ENTRYPOINT", "CMD"):
            val = __import__("json").loads(arg)
            setattr(cur, word.lower(), val)
        elif word not in ("EXPOSE", "LABEL"):
            raise SystemExit(f"image_build: instruction {word} is not emulated")
    return stages[-1]


def smoke(final):
    """genq runs in the final root as the image's user."""
    ep = final.entrypoint
    errors = []
    with Mounts(final.root):
        r = chroot_run(final, ep + ["--version"], user=final.user, check=False, capture=True)
        log(f"{' '.join(ep)} --version -> {r.returncode}: {r.stdout.strip().splitlines()[:1]}")
        if r.returncode != 0:
            errors.append(f"--version failed: {r.stderr.strip()}")
        r = chroot_run(final, ["ldd", ep[0]], check=False, capture=True)
        missing = [ln.strip() for ln in r.stdout.splitlines() if "not found" in ln]
        if r.returncode != 0 or missing:
            errors.append(f"ldd {ep[0]}: {missing or r.stderr.strip()}")
        r = chroot_run(final, ep + ["worker", "--dump-config"], user=final.user, check=False,
                       capture=True, env={"GENQ_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                          "GENQ_KAFKA_SASL_PASSWORD": "not-printed"})
        if r.returncode != 0 or "X security.protocol=SASL_SSL" not in r.stdout \
                or "not-printed" in r.stdout:
            errors.append(f"worker --dump-config: {r.returncode} {r.stdout[-300:]} {r.stderr}")
        uid = os.stat(os.path.join(final.root, ep[0].lstrip("/"))).st_uid
        if final.user.split(":")[0] in ("", "0", "root"):
            errors.append("the image runs as root")
        if uid != 0:
            errors.append(f"{ep[0]} is owned by uid {uid}: the process could rewrite its binary")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dockerfile", nargs="?", default="Dockerfile")
    ap.add_argument("--context", default=".")
    ap.add_argument("--keep", help="build in this directory and keep it")
    ap.add_argument("--build-arg", action="append", default=[])
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("image_build: needs root (chroot and mounts)", file=sys.stderr)
        return 2
    if not shutil.which("debootstrap"):
        print("image_build: needs debootstrap (scripts/deps image)", file=sys.stderr)
        return 2
    cache = os.environ.get("GENQ_CACHE_DIR", os.path.expanduser("~/.cache/genq"))
    build_args = dict(b.split("=", 1) for b in a.build_arg)
    work = a.keep or tempfile.mkdtemp(prefix="genq-image.")
    try:
        final = build(a.dockerfile, os.path.abspath(a.context), work, cache, build_args)
        errors = smoke(final)
        size = subprocess.run(["du", "-sm", final.root], capture_output=True, text=True).stdout.split()[0]
    finally:
        # Never remove a tree with a mount left in it: that would be the host's /dev.
        busy = [ln.split()[1] for ln in open("/proc/mounts") if ln.split()[1].startswith(work)]
        if busy:
            print(f"image_build: {busy} still mounted; left {work} in place", file=sys.stderr)
        elif not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    for e in errors:
        print(f"FAIL {a.dockerfile}: {e}", file=sys.stderr)
    if not errors:
        print(f"ok   {a.dockerfile}: built in chroots; genq runs as {final.user} in the runtime "
              f"root ({size} MiB, minbase rather than slim)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

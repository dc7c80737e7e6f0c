#!/usr/bin/env bash
# timeout: 900
# The Dockerfile, built without a Docker engine: each stage played in a chroot of Debian 12
# (tests/k8s/image_build.py), then genq run in the runtime stage as its non-root user.
source "$(dirname "$0")/lib.sh"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
"${sudo[@]}" /usr/bin/python3 tests/k8s/image_build.py Dockerfile >"$T_TMP/out" 2>"$T_TMP/err" ||
    { tail -40 "$T_TMP/err" >&2; fail "building the image in chroots (needs root or sudo)"; }
cat "$T_TMP/out" >&2
note "image built from the Dockerfile; genq --version, ldd and --dump-config in it"

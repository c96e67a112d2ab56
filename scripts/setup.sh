#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine for agentkit (idempotent; fast when already done):
#   1. system packages: the Docker engine and debootstrap;
#   2. a running Docker engine (started in the background when none answers);
#   3. the sandbox base image agentkit-base:bookworm, built locally (no registry is needed);
#   4. a virtual environment .venv with agentkit installed in editable mode, test extras included.
# Needs root or sudo for steps 1-3. Set AGENTKIT_SKIP_DOCKER=1 to do step 4 only (then use
# `--runtime local`).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE="${AGENTKIT_BASE_IMAGE:-agentkit-base:bookworm}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

install_system_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v git >/dev/null 2>&1 || missing+=(git)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        $SUDO apt-get update -q
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
    fi
}

start_docker_engine() {
    if docker info >/dev/null 2>&1; then return; fi
    log "starting the Docker engine (log: /tmp/agentkit-dockerd.log)"
    $SUDO setsid dockerd >/tmp/agentkit-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 60); do
        if docker info >/dev/null 2>&1; then return; fi
        sleep 1
    done
    log "the Docker engine did not answer within 60 s; its log ends with:"
    tail -20 /tmp/agentkit-dockerd.log >&2
    exit 1
}

build_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return; fi
    log "building the base image $BASE_IMAGE with debootstrap (about a minute)"
    local rootfs
    rootfs="$(mktemp -d /tmp/agentkit-rootfs.XXXXXX)"
    $SUDO debootstrap --variant=minbase \
        --include=python3,python3-pip,python3-venv,git,python3-pytest,patch \
        bookworm "$rootfs" >/tmp/agentkit-debootstrap.log 2>&1 \
        || { tail -20 /tmp/agentkit-debootstrap.log >&2; exit 1; }
    $SUDO tar -C "$rootfs" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
    $SUDO rm -rf "$rootfs"
}

install_python_packages() {
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        python3 -m venv .venv
    fi
    log "installing agentkit into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[dev]"
}

if [ "${AGENTKIT_SKIP_DOCKER:-0}" != "1" ]; then
    install_system_packages
    start_docker_engine
    build_base_image
fi
install_python_packages
log "ready: .venv/bin/agentkit"

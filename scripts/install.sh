#!/usr/bin/env bash
# Install sb3-gpg from this checkout into .venv (docs/guide/install.rst says more):
#
#     bash scripts/install.sh [EXTRAS]        # e.g. zoo (the default) or tests,zoo,plots,docs,cluster
#
# Creates .venv with python3 if it is absent (and keeps it if present), installs torch unless the
# venv already has one, then `pip install -e ".[EXTRAS]"`. scripts/quickstart.sh and scripts/test.sh
# start with it. Non-interactive.
#
# Settings: SB3_GPG_TORCH, the pip requirement for torch (default torch==2.13.0, the project's CPU
# wheel; any torch works: SB3_GPG_TORCH=torch takes the newest one for your machine).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "install.sh: $*" >&2; }
extras="${1:-zoo}"

if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
. .venv/bin/activate

if python -c "import torch" 2>/dev/null; then
    log "torch $(python -c 'import torch; print(torch.__version__)') is already installed"
else
    torch_requirement="${SB3_GPG_TORCH:-torch==2.13.0}"
    log "installing $torch_requirement"
    if ! pip install -q "$torch_requirement"; then
        log "could not install $torch_requirement; any torch works: rerun with SB3_GPG_TORCH=torch"
        exit 1
    fi
fi
log "installing sb3-gpg with the extras [$extras]"
pip install -q -e ".[$extras]"

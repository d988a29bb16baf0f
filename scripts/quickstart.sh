#!/usr/bin/env bash
# The main job from a fresh checkout, in one command:
#
#     bash scripts/quickstart.sh
#
# Installs into .venv (scripts/install.sh: creates it if absent, torch, sb3-gpg with its [zoo] extra,
# that is rl-zoo3 and Optuna), trains GPG on CartPole-v1 from the command line with
# hyperparams/gpg.yml (100k env steps; logs in logs/gpg/CartPole-v1_N), then runs the trained agent
# for 1,000 steps without rendering and prints each episode's return (500 is CartPole-v1's maximum)
# and their mean. No database is involved: for tuning on one machine, Optuna's embedded sqlite
# (--storage sqlite:///gpg.db) is enough (README, "rl-zoo3 and Optuna").
# Settings: SB3_GPG_TORCH (see scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "quickstart.sh: $*" >&2; }

bash scripts/install.sh zoo
. .venv/bin/activate

# One torch thread: with its default thread count torch runs these small networks several times
# slower on few cores (README, Quickstart).
log "training GPG on CartPole-v1"
python -m sb3_gpg.train --algo gpg --env CartPole-v1 --seed 0 -f logs --num-threads 1
log "evaluating the trained agent (1,000 steps, deterministic actions)"
python -m sb3_gpg.enjoy --algo gpg --env CartPole-v1 -f logs --no-render -n 1000 --num-threads 1

#!/usr/bin/env bash
# The README's tuning example, run and measured: does tuning pay?
#
#     bash scripts/tuning_example.sh [ENV] [BUDGET] [TRIALS]      # default: Acrobot-v1 50000 20
#
# In benchmarks/tuning/example/<env>-<budget>/ (lower case):
# 1. An Optuna study of GPG on ENV at BUDGET env steps (GPG's search space, TPE, study seed 0), kept in the
#    journal file study.log (rerun to resume it).
# 2. Its best trial written as a gpg.yml entry, best.yml (scripts/tuning_report.py --entry ... best).
# 3. A study file, study.yml, run by scripts/benchmark.py: that entry and hyperparams/gpg.yml's entry for ENV,
#    the one the study started from, each trained again on seeds 1-5 (not the study's) at the same budget and
#    evaluated on 20 episodes; its report, report.md (final returns, mean, IQM, worst), is printed.
#
# Every step resumes: finished trials and runs are kept. One training process at a time, one torch thread.
set -euo pipefail
cd "$(dirname "$0")/.."
env_id="${1:-Acrobot-v1}"
budget="${2:-50000}"
trials="${3:-20}"
name="$(echo "$env_id" | tr '[:upper:]' '[:lower:]')-$budget"
out="benchmarks/tuning/example/$name"
mkdir -p "$out"

python -m sb3_gpg.train --algo gpg --env "$env_id" --optimize --storage "$out/study.log" --study-name "$name" \
    --sampler tpe --n-startup-trials 5 --max-total-trials "$trials" -n "$budget" --n-evaluations 2 --eval-episodes 5 \
    --seed 0 --num-threads 1 --no-optim-plots -f "$out/logs" --verbose 0
python scripts/tuning_report.py --dir "$out" --entry "$name" best "$env_id" --out "$out/best.yml"
cat > "$out/study.yml" <<STUDY
title: "Tuning $env_id at $budget env steps: the study's best trial against the entry it started from"
question: >
  Does tuning pay? \`bash scripts/tuning_example.sh $env_id $budget $trials\`: an Optuna study of $trials trials
  (study seed 0), its best trial (\`best.yml\`) and the entry of hyperparams/gpg.yml, each trained on seeds 1-5.
rule: A best trial's value is the maximum of noisy evaluations; adopt it only if it beats the entry here.
tasks: {$env_id: $budget}
seeds: [1, 2, 3, 4, 5]
variants:
  entry: {}
  best: {conf: best.yml, reference: entry}
STUDY
python scripts/benchmark.py --study "$out/study.yml" > /dev/null
cat "$out/report.md"

#!/usr/bin/env bash
# The README's tuning example, run and measured: does tuning pay?
#
#     bash scripts/tuning_example.sh [ENV] [BUDGET] [TRIALS]      # default: Acrobot-v1 50000 20
#
# 1. An Optuna study of GPG on ENV at BUDGET env steps (GPG's search space, TPE, study seed 0), kept in
#    benchmarks/tuning/example/<ENV>-<BUDGET>.log (a journal file: rerun to resume it).
# 2. Its best trial written as a gpg.yml entry (scripts/tuning_report.py --entry ... best).
# 3. That entry and hyperparams/gpg.yml's entry for ENV, the one the study started from, each trained again on
#    seeds 1-5 (not the study's) at the same budget and evaluated on 20 episodes (scripts/benchmark.py).
# 4. Both summarised (runs, mean, IQM, runs below the threshold) into benchmarks/tuning/example/<ENV>-<BUDGET>.md.
#
# Every step resumes: finished trials and runs are kept. One training process at a time, one torch thread.
set -euo pipefail
cd "$(dirname "$0")/.."
env_id="${1:-Acrobot-v1}"
budget="${2:-50000}"
trials="${3:-20}"
out="benchmarks/tuning/example"
name="$(echo "$env_id" | tr '[:upper:]' '[:lower:]')-$budget"
mkdir -p "$out"

python -m sb3_gpg.train --algo gpg --env "$env_id" --optimize --storage "$out/$name.log" --study-name "$name" \
    --sampler tpe --n-startup-trials 5 --max-total-trials "$trials" -n "$budget" --n-evaluations 2 --eval-episodes 5 \
    --seed 0 --num-threads 1 --no-optim-plots -f "$out/logs" --verbose 0
python scripts/tuning_report.py --dir "$out" --entry "$name" best "$env_id" --out "$out/$name-best.yml"
for conf in "$out/$name-best.yml" hyperparams/gpg.yml; do
    label="$([ "$conf" = hyperparams/gpg.yml ] && echo entry || echo best)"
    python scripts/benchmark.py --algos gpg --tasks "$env_id" --budget "$env_id=$budget" --seeds 1 2 3 4 5 \
        --conf "gpg=$conf" --out "$out/$name-$label" > /dev/null
done
{
    echo "# Tuning $env_id at $budget env steps: the study's best trial against the entry it started from"
    echo
    echo "Command: \`bash scripts/tuning_example.sh $env_id $budget $trials\` (study seed 0; checks on seeds 1-5)."
    echo
    python scripts/tuning_report.py --checks "entry=$out/$name-entry" "best trial=$out/$name-best"
} > "$out/$name.md"
cat "$out/$name.md"

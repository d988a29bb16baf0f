#!/usr/bin/env bash
# The whole test suite from a fresh checkout, in one command (CI's .ci/run runs exactly this):
#
#     bash scripts/test.sh [PYTEST ARGS]       # e.g. -m "not slow", or tests/test_gpg.py -x
#
# Installs into .venv with every extra (scripts/install.sh tests,zoo,plots,docs,cluster), starts the local
# PostgreSQL server that the two multi-worker tuning tests need (.ci/postgres.sh), runs ruff, builds
# the sdist and wheel and checks that PyPI can render their description (twine check), builds the
# documentation with warnings as errors (sphinx-build -W), then `python -m pytest` with every tier
# (slow and postgres included: one test starts a two-node Ray cluster on 127.0.0.1 and stops it) and
# the arguments given.
#
# PostgreSQL: SB3_GPG_PG_URL, if set, names a server of your own; otherwise .ci/postgres.sh starts a
# local one (as root or through password-less sudo; it may apt-get install postgresql, said on stderr
# before it does) and `.ci/postgres.sh undo` reverses that when this script exits: removes the cluster
# if it created it, stops the server if it started it, leaves alone one that was running. Without root
# or sudo the two PostgreSQL tests are skipped with the reason, except under CI (CI set): an error.
# Settings: SB3_GPG_TORCH (see scripts/install.sh); OMP_NUM_THREADS (default 1: one torch thread
# per process, several times faster for these small networks on few cores).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "test.sh: $*" >&2; }
start=$(date +%s)

# Undone on exit, whatever the exit: what .ci/postgres.sh did (SB3_GPG_PG_CREATED or _STARTED, which
# only this script's own call below sets) and the folder of the built packages.
unset SB3_GPG_PG_STARTED SB3_GPG_PG_CREATED
dist_dir=""
cleanup() {
    if [ -n "${SB3_GPG_PG_CREATED:-}${SB3_GPG_PG_STARTED:-}" ]; then
        bash .ci/postgres.sh undo || log "could not undo what .ci/postgres.sh did"
    fi
    if [ -n "$dist_dir" ]; then
        rm -rf "$dist_dir"
    fi
}
trap cleanup EXIT
# Interrupted or terminated: exit, so that the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/install.sh tests,zoo,plots,docs,cluster
. .venv/bin/activate

if [ -n "${SB3_GPG_PG_URL:-}" ]; then
    log "PostgreSQL: using SB3_GPG_PG_URL"
else
    log "starting a local PostgreSQL server with .ci/postgres.sh (if it is not running)"
    pg_status=0
    pg_env="$(bash .ci/postgres.sh)" || pg_status=$?
    eval "$pg_env"  # even after a failure: what it started is undone on exit
    if [ "$pg_status" = 3 ] && [ -z "${CI:-}" ]; then
        log "the PostgreSQL tests will be skipped (set SB3_GPG_PG_URL, or run as root or with password-less sudo)"
    elif [ "$pg_status" != 0 ]; then
        log ".ci/postgres.sh failed (exit status $pg_status)"
        exit "$pg_status"
    fi
fi

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
ruff check .
ruff format --check .
dist_dir="$(mktemp -d)"
log "building the sdist and wheel into $dist_dir for twine check"
python -m build --outdir "$dist_dir" . >"$dist_dir/build.log" 2>&1 || {
    cat "$dist_dir/build.log" >&2
    exit 1
}
twine check --strict "$dist_dir"/*.tar.gz "$dist_dir"/*.whl
log "building the documentation (warnings are errors)"
sphinx-build -q -W --keep-going -b html docs docs/_build/html
status=0
python -m pytest -p no:cacheprovider -rs "$@" || status=$?
log "finished in $(($(date +%s) - start)) s (pytest exit status $status)"
exit "$status"

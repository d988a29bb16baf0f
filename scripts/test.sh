#!/usr/bin/env bash
# The whole test suite from a fresh checkout, in one command (CI's .ci/run runs exactly this):
#
#     bash scripts/test.sh [PYTEST ARGS]       # e.g. -m "not slow", or tests/test_gpg.py -x
#
# Installs into .venv with every extra (scripts/install.sh tests,zoo,plots,docs), starts the local
# PostgreSQL server that the two multi-worker tuning tests need (.ci/postgres.sh), runs ruff, builds
# the sdist and wheel and checks that PyPI can render their description (twine check), builds the
# documentation with warnings as errors (sphinx-build -W), then `python -m pytest` with every tier
# (slow and postgres included) and the arguments given.
#
# PostgreSQL: SB3_GPG_PG_URL, if set, names a server of your own; otherwise .ci/postgres.sh (which
# may apt-get install postgresql) runs as root, or through password-less sudo. Without either, the
# two PostgreSQL tests are skipped with the reason, except under CI (CI set), where that is an error.
# Settings: SB3_GPG_TORCH (see scripts/install.sh); OMP_NUM_THREADS (default 1: one torch thread
# per process, several times faster for these small networks on few cores).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "test.sh: $*" >&2; }
start=$(date +%s)

bash scripts/install.sh tests,zoo,plots,docs
. .venv/bin/activate

if [ -n "${SB3_GPG_PG_URL:-}" ]; then
    log "PostgreSQL: using SB3_GPG_PG_URL"
else
    pg_env=""
    if [ "$(id -u)" = 0 ]; then
        pg_env="$(bash .ci/postgres.sh)"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        pg_env="$(sudo -n bash .ci/postgres.sh)"
    elif [ -n "${CI:-}" ]; then
        log "CI needs PostgreSQL: run as root, with password-less sudo, or set SB3_GPG_PG_URL"
        exit 1
    else
        log "not root and no password-less sudo: the PostgreSQL tests will be skipped" \
            "(set SB3_GPG_PG_URL, or run as root, to run them)"
    fi
    eval "$pg_env"
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
rm -rf "$dist_dir"
log "building the documentation (warnings are errors)"
sphinx-build -q -W --keep-going -b html docs docs/_build/html
status=0
python -m pytest -p no:cacheprovider -rs "$@" || status=$?
log "finished in $(($(date +%s) - start)) s (pytest exit status $status)"
exit "$status"

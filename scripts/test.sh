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
# PostgreSQL: SB3_GPG_PG_URL, if set, names a server of your own; otherwise .ci/postgres.sh (which
# may apt-get install postgresql, said on stderr before it does) runs as root, or through
# password-less sudo, and the server is stopped again when this script exits if this script started
# it (one that was already running is left running). Without either, the two PostgreSQL tests are
# skipped with the reason, except under CI (CI set), where that is an error.
# Settings: SB3_GPG_TORCH (see scripts/install.sh); OMP_NUM_THREADS (default 1: one torch thread
# per process, several times faster for these small networks on few cores).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "test.sh: $*" >&2; }
start=$(date +%s)

# What this script started or made, undone on exit, whatever the exit: the PostgreSQL cluster, removed
# whole if .ci/postgres.sh created it (it then sets SB3_GPG_PG_CREATED), else stopped if it started it
# (SB3_GPG_PG_STARTED); and the folder of the built packages.
as_root=()
dist_dir=""
cleanup() {
    if [ -n "${SB3_GPG_PG_CREATED:-}" ]; then
        log "removing the PostgreSQL cluster it created ($SB3_GPG_PG_CREATED: data, user and database)"
        # shellcheck disable=SC2086 # "VERSION NAME", two arguments
        (cd / && "${as_root[@]}" pg_dropcluster --stop $SB3_GPG_PG_CREATED) || log "could not remove cluster $SB3_GPG_PG_CREATED"
        # pg_dropcluster leaves the configuration folder where .ci/postgres.sh added a file of its own.
        "${as_root[@]}" rm -rf "/etc/postgresql/${SB3_GPG_PG_CREATED% *}/${SB3_GPG_PG_CREATED#* }"
    elif [ -n "${SB3_GPG_PG_STARTED:-}" ]; then
        log "stopping the PostgreSQL server it started (cluster $SB3_GPG_PG_STARTED)"
        # shellcheck disable=SC2086 # "VERSION NAME", two arguments
        (cd / && "${as_root[@]}" pg_ctlcluster $SB3_GPG_PG_STARTED stop) || log "could not stop cluster $SB3_GPG_PG_STARTED"
    fi
    if [ -n "$dist_dir" ]; then
        rm -rf "$dist_dir"
    fi
}
unset SB3_GPG_PG_STARTED SB3_GPG_PG_CREATED  # set only by this script's own .ci/postgres.sh, below
trap cleanup EXIT
# Interrupted or terminated: exit, so that the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/install.sh tests,zoo,plots,docs,cluster
. .venv/bin/activate

if [ -n "${SB3_GPG_PG_URL:-}" ]; then
    log "PostgreSQL: using SB3_GPG_PG_URL"
else
    pg_env=""
    pg_status=0
    if [ "$(id -u)" = 0 ]; then
        as_root=(env)
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    elif [ -n "${CI:-}" ]; then
        log "CI needs PostgreSQL: run as root, with password-less sudo, or set SB3_GPG_PG_URL"
        exit 1
    else
        log "not root and no password-less sudo: the PostgreSQL tests will be skipped" \
            "(set SB3_GPG_PG_URL, or run as root, to run them)"
    fi
    if [ "${#as_root[@]}" -gt 0 ]; then
        # The same test as .ci/postgres.sh's, which then installs Debian's postgresql.
        if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
            log "PostgreSQL is not installed: .ci/postgres.sh will install Debian's postgresql with apt-get"
        fi
        log "starting a local PostgreSQL server with .ci/postgres.sh (if it is not running)"
        pg_env="$("${as_root[@]}" bash .ci/postgres.sh)" || pg_status=$?
    fi
    # Read even when .ci/postgres.sh failed: it may have started the server, which the EXIT trap then stops.
    eval "$pg_env"
    if [ "$pg_status" != 0 ]; then
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

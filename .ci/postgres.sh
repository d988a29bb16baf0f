#!/usr/bin/env bash
# A local PostgreSQL server for the multi-worker tuning tests (pytest -m postgres), and its removal.
#
#     bash .ci/postgres.sh           # start: prints `export` lines to eval
#     bash .ci/postgres.sh undo      # undo what a start printed (read from the environment)
#
# start installs Debian's postgresql if it is missing, creates (once) a cluster of its own listening on
# 127.0.0.1 only, starts it if it is down, and creates (once) its user and database. Idempotent,
# non-interactive. Logs go to stderr; stdout holds only `export` lines: the URL, and what this run
# changed, so that undo can reverse it: SB3_GPG_PG_CREATED when it created the cluster (undo removes
# it whole: data directory, user, database and configuration), else SB3_GPG_PG_STARTED when it
# started a server that was down (undo stops it). A server that was already running is left alone.
#
#     $ bash .ci/postgres.sh
#     export SB3_GPG_PG_CREATED='15 sb3gpg'
#     export SB3_GPG_PG_STARTED='15 sb3gpg'
#     export SB3_GPG_PG_URL='postgresql+psycopg2://sb3gpg:sb3gpg@127.0.0.1:54329/sb3gpg'
#
# so `eval "$(bash .ci/postgres.sh)"` (as scripts/test.sh does) or `. .ci/postgres.sh` sets them in
# the calling shell. Needs root: run as another user, it reruns itself through password-less sudo,
# or exits with status 3 if there is none. Settings: SB3_GPG_PG_PORT (default 54329); cluster, user,
# password and database are "sb3gpg". The URL names the psycopg2 driver (pip install
# psycopg2-binary): SQLAlchemy >= 2.1 would otherwise pick psycopg 3 for a plain postgresql:// URL.

_sb3_gpg_postgres() {
    set -euo pipefail
    local port="${SB3_GPG_PG_PORT:-54329}"
    local name="sb3gpg"
    log() { echo "postgres.sh: $*" >&2; }
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
            log "needs root or password-less sudo"
            return 3
        fi
        sudo -n env "SB3_GPG_PG_PORT=$port" "SB3_GPG_PG_CREATED=${SB3_GPG_PG_CREATED:-}" \
            "SB3_GPG_PG_STARTED=${SB3_GPG_PG_STARTED:-}" bash "$_sb3_gpg_script" "$@"
        return
    fi
    # The postgres user runs the server's tools below; from a folder it cannot enter (root's home) each of them
    # would say "could not change directory". This function runs in a subshell of its own.
    cd /
    if [ "${1:-start}" = undo ]; then
        if [ -n "${SB3_GPG_PG_CREATED:-}" ]; then
            log "removing the PostgreSQL cluster it created ($SB3_GPG_PG_CREATED: data, user and database)"
            # shellcheck disable=SC2086 # "VERSION NAME", two arguments
            pg_dropcluster --stop $SB3_GPG_PG_CREATED
            # pg_dropcluster leaves the configuration folder where start added a file of its own.
            rm -rf "/etc/postgresql/${SB3_GPG_PG_CREATED% *}/${SB3_GPG_PG_CREATED#* }"
        elif [ -n "${SB3_GPG_PG_STARTED:-}" ]; then
            log "stopping the PostgreSQL server it started (cluster $SB3_GPG_PG_STARTED)"
            # shellcheck disable=SC2086 # "VERSION NAME", two arguments
            pg_ctlcluster $SB3_GPG_PG_STARTED stop
        fi
        return
    fi

    if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
        log "installing Debian's postgresql with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends postgresql >&2
    fi
    local version
    version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)"

    if ! pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {found = 1} END {exit !found}'; then
        log "creating cluster $version/$name on port $port"
        pg_createcluster --port "$port" --start-conf manual "$version" "$name" >&2
        # Printed at once, so that a caller can remove the cluster even if a step below fails.
        echo "export SB3_GPG_PG_CREATED='$version $name'"
    fi
    # Listen on the loopback address only (Debian's postgresql.conf includes conf.d/).
    local conf_dir="/etc/postgresql/$version/$name/conf.d"
    mkdir -p "$conf_dir"
    printf "listen_addresses = '127.0.0.1'\n" >"$conf_dir/sb3-gpg.conf"
    chown -R postgres:postgres "$conf_dir"

    local status
    status="$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $4}')"
    if [ "$status" != "online" ]; then
        log "starting cluster $version/$name"
        pg_ctlcluster "$version" "$name" start >&2
        # Printed at once, so that a caller can stop the server even if a step below fails.
        echo "export SB3_GPG_PG_STARTED='$version $name'"
    fi
    local i
    for i in $(seq 1 30); do
        if pg_isready -q -h 127.0.0.1 -p "$port"; then
            break
        fi
        if [ "$i" = 30 ]; then
            log "the server did not become ready on 127.0.0.1:$port"
            return 1
        fi
        sleep 1
    done

    psql_admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"; }
    if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$name'")" != "1" ]; then
        log "creating user $name"
        psql_admin -c "CREATE ROLE $name LOGIN PASSWORD '$name'" >&2
    fi
    if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" != "1" ]; then
        log "creating database $name"
        psql_admin -c "CREATE DATABASE $name OWNER $name" >&2
    fi
    echo "export SB3_GPG_PG_URL='postgresql+psycopg2://$name:$name@127.0.0.1:$port/$name'"
}

_sb3_gpg_script="${BASH_SOURCE[0]}"
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _sb3_gpg_postgres "$@"
else
    # Sourced: run in a subshell so that `set -e` and the helpers stay out of the caller's shell.
    _sb3_gpg_export="$(_sb3_gpg_postgres)" && eval "$_sb3_gpg_export" && echo "$_sb3_gpg_export"
fi

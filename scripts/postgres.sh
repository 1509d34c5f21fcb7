# Shell functions shared by ./test.sh and bench/run.sh for their throw-away PostgreSQL clusters. Sourced, not run;
# the caller defines die() (print a message and exit non-zero).

# The directory with PostgreSQL's server binaries: pg_config's bindir, else Debian's /usr/lib/postgresql/<newest>/bin
# (Debian and Ubuntu keep the server outside PATH, one directory per major version), else PATH. Fails when none has
# initdb and pg_ctl.
find_pg_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Debian's postgresql package through apt-get, as root or with sudo. $1: what to tell the user when that fails.
install_postgres() {
    local hint="$1"
    command -v apt-get >/dev/null 2>&1 \
        || die "PostgreSQL server binaries (initdb, pg_ctl) were not found and apt-get is not available: $hint."
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 \
            || die "PostgreSQL server binaries were not found, and installing them needs root (no sudo here): $hint."
        sudo=(sudo)
    fi
    printf '%s\n' "PostgreSQL server binaries not found; installing Debian's postgresql package..." >&2
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
        || die "apt-get update failed: $hint."
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2 \
        || die "apt-get install postgresql failed: $hint."
}

# A free TCP port on 127.0.0.1, asked of the kernel when python3 is there, else probed.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local port
    for _ in $(seq 1 100); do
        port=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return
        fi
    done
    die "could not find a free TCP port on 127.0.0.1."
}

# test/lib.sh: shell helpers shared by test/run-tests, test/demo and test/bench/run.
#
# The suites, the demo and the benchmarks all run PostgreSQL as an unprivileged
# user against a *staged* installation: a private copy of the server's bin/
# (PostgreSQL finds its lib/ and share/ relative to the binary) with lib/ and
# share/ made of links to the system's files plus this build of pg_incident.
# So a run never depends on, nor needs root for, what is installed system-wide.

PG_MAJOR=${PG_MAJOR:-15}
PG_PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libcurl4-openssl-dev libipc-run-perl make gcc libio-socket-ssl-perl openssl python3-aiosmtpd"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

# use_fixed_locale: run everything in C.UTF-8 (C where that is missing),
# whatever LANG, LC_* and LANGUAGE the caller has. initdb takes its locale
# from the environment, and a locale that is not installed makes it fail
# ("invalid locale settings"); PostgreSQL's TAP framework drops LC_ALL, so
# LANG has to be right too. Messages then stay in English, which the expected
# output of the suites and the parsing of pgbench's output rely on, and
# apt-get and perl do not warn about the locale.
use_fixed_locale() {
	local v
	# LC_ALL=C while the others change, so that bash does not warn about each
	export LC_ALL=C
	for v in LC_CTYPE LC_COLLATE LC_MESSAGES LC_MONETARY LC_NUMERIC LC_TIME \
		LC_ADDRESS LC_IDENTIFICATION LC_MEASUREMENT LC_NAME LC_PAPER LC_TELEPHONE LANGUAGE; do
		unset "$v"
	done
	if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
		export LANG=C.UTF-8
	else
		export LANG=C
	fi
	unset LC_ALL
}
use_fixed_locale

# ensure_packages: as root, apt-get install whatever of $PG_PACKAGES is missing;
# as anyone else, fail with the list if something is missing.
ensure_packages() {
	local missing="" p
	for p in $PG_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages:$missing (run as root once, or: apt-get install$missing)"
	fi
	say "installing:$missing"
	# A fresh postgresql package must not create and start a cluster on 5432.
	mkdir -p /etc/postgresql-common/createcluster.d
	[ -f /etc/postgresql-common/createcluster.d/pg_incident.conf ] ||
		echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pg_incident.conf
	export DEBIAN_FRONTEND=noninteractive
	# wait for another apt or dpkg (unattended upgrades, a parallel run) rather than fail
	apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing >&2 ||
		die "apt-get install$missing failed"
}

# system_bindir: the bin folder of the system's PostgreSQL.
system_bindir() { echo "/usr/lib/postgresql/$PG_MAJOR/bin"; }

# link_tree SRC DST: DST becomes a real folder of links to each entry of SRC.
link_tree() {
	local src=$1 dst=$2 e
	mkdir -p "$dst"
	for e in "$src"/* "$src"/.[!.]*; do
		[ -e "$e" ] || continue
		ln -sfn "$e" "$dst/$(basename "$e")"
	done
}

# stage_install TREE STAGE: build TREE and install it into a staged PostgreSQL
# under STAGE; prints the staged pg_config.
stage_install() {
	local tree=$1 stage=$2 sys_bin sys_lib sys_share st_bin st_lib st_share
	sys_bin=$(system_bindir)
	sys_lib=$("$sys_bin/pg_config" --pkglibdir)
	sys_share=$("$sys_bin/pg_config" --sharedir)
	st_bin=$stage$sys_bin
	st_lib=$stage$sys_lib
	st_share=$stage$sys_share
	if [ ! -x "$st_bin/postgres" ]; then
		rm -rf "$stage"
		mkdir -p "$st_bin"
		cp -p "$sys_bin"/* "$st_bin/"     # copies: PostgreSQL locates lib/ and share/ from its real path
		link_tree "$sys_lib" "$st_lib"
		link_tree "$sys_share" "$st_share"
		rm -f "$st_share/extension"
		link_tree "$sys_share/extension" "$st_share/extension"
		# headers, for building against the staged pg_config
		mkdir -p "$stage$(dirname "$("$sys_bin/pg_config" --includedir)")"
		ln -sfn "$("$sys_bin/pg_config" --includedir)" "$stage$("$sys_bin/pg_config" --includedir)"
	fi
	make -C "$tree" -s PG_CONFIG="$st_bin/pg_config" with_llvm=no >&2 || die "build failed"
	make -C "$tree" -s PG_CONFIG="$st_bin/pg_config" with_llvm=no install >&2 || die "staged install failed"
	echo "$st_bin/pg_config"
}

# unprivileged_user: the OS user that runs PostgreSQL when we are root.
unprivileged_user() { echo "${PG_INCIDENT_TEST_USER:-postgres}"; }

# copy_tree_for USER SRC: copy the source tree SRC to a fresh folder USER owns;
# prints its path.
copy_tree_for() {
	local user=$1 src=$2 dst
	dst=$(mktemp -d /tmp/pg_incident.XXXXXX)
	if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
		( cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$dst" )
	else
		cp -a "$src"/. "$dst"/
	fi
	chown -R "$user": "$dst"
	echo "$dst"
}

# ---- throw-away clusters (test/demo, test/bench/run) ----
#
# cluster_start BINDIR [SETTING...] initdb's a cluster in a fresh folder under
# /tmp, with its unix socket in that same private folder, listen_addresses = ''
# (no TCP at all), a port that is neither 5432 nor a port something listens on,
# shared_preload_libraries = 'pg_incident' and each SETTING ("name = value")
# appended to postgresql.conf; starts it, and exports PGHOST, PGPORT, PGUSER and
# PGDATABASE (postgres) for psql, pgbench and the like. Its superuser is
# "postgres" (CLUSTER_SUPERUSER), whatever the OS user is called, so that a
# script may create roles named like people (the demo does) even when the OS
# user has such a name. It sets traps on EXIT,
# HUP, INT and TERM so that the cluster is stopped and its folder removed
# however the script ends; a caller with cleanup of its own puts it in
# CLUSTER_ON_EXIT (a command run after the cluster is gone) instead of setting
# its own EXIT trap. Not as root: PostgreSQL refuses to run as root.

CLUSTER_DIR=""
CLUSTER_BINDIR=""
CLUSTER_PID=""
CLUSTER_ON_EXIT=${CLUSTER_ON_EXIT:-}
CLUSTER_SUPERUSER=${CLUSTER_SUPERUSER:-postgres}

# port_in_use PORT: true if something listens on TCP PORT (IPv4 or IPv6).
port_in_use() {
	local hex f
	hex=$(printf '%04X' "$1")
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		# local_address is field 2 (ADDR:PORT), st is field 4 (0A = LISTEN)
		awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' "$f" && return 0
	done
	return 1
}

# free_port: a port in 20000..59999 that nothing listens on.
free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		port_in_use "$p" || { echo "$p"; return 0; }
	done
	die "could not find a free port"
}

# cluster_stop: stop the throw-away cluster (fast, then immediate; with
# signals if pg_ctl cannot) and remove its folder; safe to call twice and when
# none was started.
cluster_stop() {
	local pid i
	[ -n "$CLUSTER_DIR" ] || return 0
	if [ -f "$CLUSTER_DIR/data/postmaster.pid" ]; then
		if ! "$CLUSTER_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 &&
			! "$CLUSTER_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w -t 60 stop >/dev/null 2>&1; then
			# pg_ctl failed or is gone: SIGQUIT is an immediate shutdown
			pid=$(head -n 1 "$CLUSTER_DIR/data/postmaster.pid" 2>/dev/null)
			# only if that process is this cluster's postmaster (not a reused pid)
			tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $CLUSTER_DIR/data" || pid=""
			if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
				for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			fi
			if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
				say "warning: could not stop the cluster in $CLUSTER_DIR (postmaster $pid); left it in place"
				CLUSTER_DIR=""
				return 1
			fi
		fi
	fi
	[ -n "$CLUSTER_PID" ] && wait "$CLUSTER_PID" 2>/dev/null
	rm -rf "$CLUSTER_DIR"
	CLUSTER_DIR="" CLUSTER_PID=""
}

# cluster__on_exit: the EXIT trap of a script that started a cluster.
cluster__on_exit() {
	local rc=$?
	trap - EXIT HUP INT TERM
	cluster_stop
	[ -n "$CLUSTER_ON_EXIT" ] && eval "$CLUSTER_ON_EXIT"
	exit $rc
}

cluster_start() {
	local bindir=$1 port s i
	shift
	[ "$(id -u)" -ne 0 ] || die "cluster_start: PostgreSQL does not run as root"
	[ -z "$CLUSTER_DIR" ] || die "cluster_start: a cluster is already running in $CLUSTER_DIR"
	CLUSTER_BINDIR=$bindir
	trap cluster__on_exit EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	CLUSTER_DIR=$(mktemp -d /tmp/pg_incident_cluster.XXXXXX) || die "could not create a folder for the cluster"
	chmod 700 "$CLUSTER_DIR"
	"$bindir/initdb" -D "$CLUSTER_DIR/data" -U "$CLUSTER_SUPERUSER" -A trust -E UTF8 --no-locale \
		--no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 || { cat "$CLUSTER_DIR/initdb.log" >&2; die "initdb failed"; }
	port=$(free_port)
	{
		echo "# throw-away cluster of test/lib.sh cluster_start"
		echo "listen_addresses = ''"
		echo "port = $port"
		echo "unix_socket_directories = '$CLUSTER_DIR'"
		echo "shared_preload_libraries = 'pg_incident'"
		for s in "$@"; do echo "$s"; done
	} >>"$CLUSTER_DIR/data/postgresql.conf"
	# The postmaster is this shell's child (not pg_ctl's, which would leave it
	# to init), so that cluster_stop reaps it and leaves no zombie behind.
	"$bindir/postgres" -D "$CLUSTER_DIR/data" </dev/null >"$CLUSTER_DIR/server.log" 2>&1 &
	CLUSTER_PID=$!
	for i in $(seq 1 600); do
		"$bindir/pg_isready" -q -h "$CLUSTER_DIR" -p "$port" && break
		if ! kill -0 "$CLUSTER_PID" 2>/dev/null || [ "$i" -eq 600 ]; then
			cat "$CLUSTER_DIR/server.log" >&2
			die "the throw-away cluster did not start"
		fi
		sleep 0.1
	done
	export PGHOST=$CLUSTER_DIR PGPORT=$port PGUSER=$CLUSTER_SUPERUSER PGDATABASE=postgres
	unset PGSERVICE PGPASSWORD PGOPTIONS PGHOSTADDR
}

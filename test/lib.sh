# test/lib.sh: shell helpers shared by test/run-tests, test/demo and test/bench/run.
#
# The suites, the demo and the benchmarks all run PostgreSQL as an unprivileged
# user against a *staged* installation: a private copy of the server's bin/
# (PostgreSQL finds its lib/ and share/ relative to the binary) with lib/ and
# share/ made of links to the system's files plus this build of pg_incident.
# So a run never depends on, nor needs root for, what is installed system-wide.

PG_MAJOR=${PG_MAJOR:-15}
PG_PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libcurl4-openssl-dev libipc-run-perl make gcc"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

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
	apt-get update -qq >&2 || die "apt-get update failed"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2 || die "apt-get install$missing failed"
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

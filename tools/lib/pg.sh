# tools/lib/pg.sh: throw-away PostgreSQL 15 clusters for tests and the demo.
# Source it; functions:
#   pg_up DIR PORT     initdb (if needed) and start a cluster in DIR, socket in DIR
#   pg_down DIR        stop it
#   pg_psql DIR PORT [psql args...]
# PostgreSQL refuses to run as root, so when we are root the cluster belongs
# to the `postgres` OS user (created by the postgresql-common package).

PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}

pg_as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_up() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		pg_as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; return 1; }
		cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
max_worker_processes = 8
max_parallel_workers_per_gather = 2
shared_buffers = 256MB
log_min_messages = warning
shared_preload_libraries = 'dstack_fdw'
CONF
	fi
	pg_as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ tail -20 "$dir/server.log" >&2; return 1; }
}

pg_down() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] && pg_as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

pg_psql() {
	local dir=$1 port=$2; shift 2
	psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}

# A free TCP port on loopback (for anvil) or a unique number (for unix-socket clusters).
free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# The loopback test registry (hack/cmd/testregistry) a lane pulls every image
# from. Sourced, not run; needs log/die and running.
# shellcheck shell=bash

# wait_registry PID OUT LOG: sets $registry to the host:port testregistry prints
# ("ready HOST:PORT") on OUT once it serves; dies when it exits first or is not
# ready in 5 minutes (building the images the first time takes a minute or two).
wait_registry() {
	local pid="$1" out="$2" errlog="$3" i
	registry=""
	for ((i = 0; i < 3000; i++)); do
		registry=$(awk '$1 == "ready" {print $2; exit}' "$out" 2>/dev/null)
		[ -n "$registry" ] && break
		running "$pid" || { tail -n 40 "$errlog" >&2; die "testregistry exited"; }
		sleep 0.1
	done
	[ -n "$registry" ] || { tail -n 40 "$errlog" >&2; die "testregistry not ready after 5 minutes"; }
	log "test registry on $registry"
}

# start_registry BIN DIR: testregistry BIN on a free loopback port, its output in
# DIR/registry.out and DIR/registry.log; sets $registry_pid and $registry.
start_registry() {
	local bin="$1" dir="$2"
	: >"$dir/registry.out"
	"$bin" -addr 127.0.0.1:0 >"$dir/registry.out" 2>"$dir/registry.log" &
	registry_pid=$!
	wait_registry "$registry_pid" "$dir/registry.out" "$dir/registry.log"
}

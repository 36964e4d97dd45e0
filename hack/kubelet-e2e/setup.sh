# Sourced by hack/kubelet-e2e.sh: starts the lane's registry, network, berthd and
# kubelet, and writes its static pods. Uses the variables the script set ($tmp, $hex,
# $own, $kubelet, $cgroot, $node, $ns).
# shellcheck shell=bash

# free_port: a TCP port nothing listens on, picked at random from 40000-49999 (the
# cluster lane picks from 20000-31999); a race with another process makes kubelet fail
# to bind, and the lane says so.
free_port() {
	local p used
	used=$(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
	for ((;;)); do
		p=$((40000 + RANDOM % 10000))
		grep -qx "$p" <<<"$used" && continue
		[[ " ${taken_ports:-} " == *" $p "* ]] && continue
		taken_ports="${taken_ports:-} $p"
		echo "$p"
		return
	done
}

start_registry() {
	local i
	"$own/testregistry" -addr 127.0.0.1:0 >"$tmp/registry.out" 2>"$tmp/registry.log" &
	registry_pid=$!
	registry=""
	for ((i = 0; i < 3000; i++)); do
		registry=$(awk '$1 == "ready" {print $2; exit}' "$tmp/registry.out")
		[ -n "$registry" ] && break
		running "$registry_pid" || { log "testregistry exited:"; tail -n 40 "$tmp/registry.log" >&2; exit 1; }
		sleep 0.1
	done
	[ -n "$registry" ] || { log "testregistry not ready after 5 minutes"; exit 1; }
	log "test registry on $registry"
}

# start_network: the lane's own CNI network: a bridge bk<hex> with a free /24 of
# 10.195.0.0/16, no masquerading, portmap with snat (hostPorts answer on 127.0.0.1).
start_network() {
	local i candidate
	bridge="bk$hex"
	subnet=""
	for ((i = 0; i < 256; i++)); do
		candidate="10.195.$(((RANDOM + i) % 256))"
		if ! ip -4 -o addr show | grep -q " $candidate\."; then
			subnet="$candidate.0/24"
			break
		fi
	done
	[ -n "$subnet" ] || { log "no free subnet in 10.195.0.0/16"; exit 1; }
	ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
	mkdir -p "$tmp/net.d"
	cat >"$tmp/net.d/10-lane1.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "lane1", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "dataDir": "$tmp/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
  {"type": "loopback"}]}
EOF
}

start_berthd() {
	local i
	cat >"$tmp/berth.toml" <<EOF
# Written by hack/kubelet-e2e.sh: every image comes from the loopback test registry.
[image.registry]
mirrors_only = true

[image.registry.mirrors]
"docker.io" = ["http://$registry"]
"registry.k8s.io" = ["http://$registry"]

[image.registry.hosts."$registry"]
plain_http = true

[network]
conf_dir = "$tmp/net.d"

[pod]
disk_usage_interval = "2s"
EOF
	"$own/berthd" --config "$tmp/berth.toml" --config-dir "$tmp/berth.d" \
		--root "$tmp/root" --state "$tmp/state" --listen "unix://$tmp/berth.sock" --log-level info \
		>"$tmp/berthd.log" 2>&1 &
	berthd_pid=$!
	for ((i = 0; ; i++)); do
		crictl version >/dev/null 2>&1 && break
		running "$berthd_pid" || { log "berthd exited:"; tail -n 40 "$tmp/berthd.log" >&2; exit 1; }
		((i < 300)) || { log "berthd not answering after 30s"; exit 1; }
		sleep 0.1
	done
	log "berthd (pid $berthd_pid) on $tmp/berth.sock"
}

# make_cgroot: kubelet's cgroup root, /berth-kubelet-<hex>, in every hierarchy (kubelet
# checks that it exists); cpuset gets its parent's CPUs and memory nodes, which a new
# v1 cpuset cgroup lacks.
make_cgroot() {
	local m f
	for m in $(cgroup_mounts); do
		mkdir "$m/$cgroot"
		for f in cpuset.cpus cpuset.mems; do
			[ -f "$m/$f" ] && cat "$m/$f" >"$m/$cgroot/$f"
		done
	done
	log "cgroup root /$cgroot"
}

# write_manifests: the static pods.
#  web:    webserver (e2e nginx image) with a readiness httpGet and a liveness
#          tcpSocket probe, a hostPort, memory and CPU limits, and a busybox sidecar
#          sharing an emptyDir, with env, a hostPath and a preStop hook, SIGTERM traced.
#  probes: busybox whose exec liveness probe starts failing after 6 s: restarted.
#  crash:  busybox that prints a line and exits 3, again and again.
#  writer: busybox that writes 10 MB into its root filesystem.
write_manifests() {
	hostport=$(free_port)
	mkdir -p "$tmp/manifests" "$tmp/host"
	local busybox=registry.k8s.io/e2e-test-images/busybox:1.29-2
	local nginx=registry.k8s.io/e2e-test-images/nginx:1.14-2
	cat >"$tmp/manifests/web.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 20
  volumes:
  - {name: data, emptyDir: {}}
  - {name: host, hostPath: {path: $tmp/host, type: Directory}}
  containers:
  - name: web
    image: $nginx
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 80, hostPort: $hostport, protocol: TCP}]
    resources:
      limits: {memory: 64Mi, cpu: 250m}
    readinessProbe:
      httpGet: {path: /, port: 80}
      periodSeconds: 2
    livenessProbe:
      tcpSocket: {port: 80}
      periodSeconds: 2
    volumeMounts: [{name: data, mountPath: /data}]
  - name: sidecar
    image: $busybox
    imagePullPolicy: IfNotPresent
    env: [{name: GREETING, value: hello-from-env}]
    command: [sh, -c]
    args:
    - |
      trap 'echo "term \$(date +%s)" >> /host/events; sleep 2; exit 0' TERM
      echo "\$GREETING" > /data/hello
      while true; do sleep 1; done
    lifecycle:
      preStop:
        exec: {command: [sh, -c, 'echo "prestop \$(date +%s)" >> /host/events; sleep 2']}
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: host, mountPath: /host}
EOF
	cat >"$tmp/manifests/probes.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: probes, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: probed
    image: $busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'touch /tmp/healthy; sleep 6; rm /tmp/healthy; sleep 3600']
    readinessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 2
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 2
      failureThreshold: 1
EOF
	cat >"$tmp/manifests/crash.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: crash, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: crasher
    image: $busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo crashing now; exit 3']
EOF
	cat >"$tmp/manifests/writer.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: writer, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: writer
    image: $busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'head -c 10485760 /dev/urandom > /big && sync && echo wrote && sleep 3600']
EOF
}

start_kubelet() {
	local i
	kport=$(free_port) roport=$(free_port) hzport=$(free_port)
	# No cgroupDriver: kubelet takes it from berthd's RuntimeConfig. No kubeletCgroups,
	# systemCgroups or runtime cgroups: no process of the node is moved.
	cat >"$tmp/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$tmp/berth.sock
imageServiceEndpoint: unix://$tmp/berth.sock
staticPodPath: $tmp/manifests
podLogsDir: $tmp/pod-logs
fileCheckFrequency: 2s
syncFrequency: 10s
address: 127.0.0.1
port: $kport
readOnlyPort: $roport
healthzBindAddress: 127.0.0.1
healthzPort: $hzport
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupRoot: /$cgroot
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
registerNode: false
resolvConf: ""
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 1Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
localStorageCapacityIsolation: true
EOF
	iptables -w -S >"$tmp/iptables-before" 2>/dev/null || true
	"$kubelet" --config "$tmp/kubelet.yaml" --root-dir "$tmp/kubelet" --cert-dir "$tmp/kubelet/pki" \
		--hostname-override "$node" --v=2 >"$tmp/kubelet.log" 2>&1 &
	kubelet_pid=$!
	for ((i = 0; ; i++)); do
		[ "$(curl -fsS "http://127.0.0.1:$hzport/healthz" 2>/dev/null)" = ok ] && break
		running "$kubelet_pid" || { log "kubelet exited:"; tail -n 40 "$tmp/kubelet.log" >&2; exit 1; }
		((i < 1200)) || { log "kubelet not healthy after 2 minutes:"; tail -n 40 "$tmp/kubelet.log" >&2; exit 1; }
		sleep 0.1
	done
	log "kubelet (pid $kubelet_pid) healthy; read-only port $roport, hostPort $hostport"
}

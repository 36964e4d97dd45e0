# Sourced by hack/kubelet-e2e.sh: starts the lane's registry, network, berthd and
# kubelet, and writes its static pods. Uses the variables the script set ($tmp, $hex,
# $own, $kubelet, $cgroot, $node, $ns).
# shellcheck shell=bash

# start_network: the lane's own CNI network: a bridge bk<hex> with a free /24 of
# 10.195.0.0/16, no masquerading, portmap with snat (hostPorts answer on 127.0.0.1).
start_network() {
	bridge="bk$hex"
	subnet=$(pick_subnet 10.195)
	ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
	write_bridge_conflist "$tmp/net.d/10-lane1.conflist" lane1 "$bridge" "$subnet" "$tmp/ipam"
}

start_berthd() {
	local argv
	write_berth_toml "$tmp/berth.toml" "$registry" "$tmp/net.d"
	cat >>"$tmp/berth.toml" <<EOF

[pod]
disk_usage_interval = "2s"
EOF
	mapfile -t argv < <(berthd_args "$tmp")
	"$own/berthd" "${argv[@]}" >"$tmp/berthd.log" 2>&1 &
	berthd_pid=$!
	wait_berthd "$berthd_pid" "$crictl_bin" "$tmp/berth.sock" "$tmp/berthd.log"
}

# write_manifests: the static pods.
#  web:    webserver (e2e nginx image) with a readiness httpGet and a liveness
#          tcpSocket probe, a hostPort, memory and CPU limits, and a busybox sidecar
#          sharing an emptyDir, with env, a hostPath and a preStop hook, SIGTERM traced.
#  probes: busybox whose exec liveness probe starts failing after 6 s: restarted.
#  crash:  busybox that prints a line and exits 3, again and again.
#  writer: busybox that writes 10 MB into its root filesystem.
write_manifests() {
	# Ports from 40000-49999: the cluster lane picks from 20000-31999.
	hostport=$(free_port 40000 10000)
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
	kport=$(free_port 40000 10000) roport=$(free_port 40000 10000) hzport=$(free_port 40000 10000)
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

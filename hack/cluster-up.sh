#!/usr/bin/env bash
# Brings up a one-node Kubernetes cluster whose node runs Berth, all on this
# machine and all private to this run:
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler  127.0.0.1, free ports
#   kube-proxy (iptables mode)                                     --
#   kubelet, registered as node berth-<id>                         the pod bridge's gateway IP
#   berthd                                                         a unix socket in the run dir
#   the loopback test registry, mirroring docker.io, registry.k8s.io, gcr.io
#
#   hack/cluster-up.sh     then: export KUBECONFIG=$(hack/cluster-up.sh --kubeconfig)
#   hack/cluster-down.sh   stops it all and removes everything it made
#
# Certificates and the service-account keys are made with openssl (one CA, handed
# to the controller-manager so service-account token volumes carry a real
# ca.crt). The kubelet runs with a private root dir, a cgroupRoot of its own
# (never /kubepods), no system/kubelet/runtime cgroups, failCgroupV1 false; the
# sysctls kubelet and kube-proxy may rewrite and the iptables chains that exist
# are recorded first, so that cluster-down puts the machine back as it was.
# Knobs: BERTHD (a berthd binary instead of building ./cmd/berthd). Needs root.
set -euo pipefail
source "$(dirname "$0")/cluster/lib.sh"
source "$repo/hack/cluster/certs.sh"

if [ "${1:-}" = "--kubeconfig" ]; then
	[ -f "$cluster_env" ] || die "no cluster is up (no $cluster_env)"
	# shellcheck disable=SC1090
	source "$cluster_env"
	echo "$run/admin.kubeconfig"
	exit 0
fi
[ "$(id -u)" = 0 ] || die "needs root (kubelet and berthd run containers)"
if [ -f "$cluster_env" ]; then
	die "a cluster is up already ($cluster_env); run hack/cluster-down.sh first"
fi
start=$(date +%s)

# --- binaries: Kubernetes from the machine-wide cache, berth's own per checkout.
"$repo/hack/k8s/build.sh" kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd
k8s_bin=$("$repo/hack/k8s/build.sh" --bin-dir)
own="$repo/_output/bin"
mkdir -p "$own" "$(dirname "$cluster_env")"
crictl=$(ensure_crictl "$repo/hack/.cache/bin")
berthd="${BERTHD:-$own/berthd}"
[ -n "${BERTHD:-}" ] || build "$berthd" ./cmd/berthd
build_monitor "$(dirname "$berthd")"
build "$own/testregistry" ./hack/cmd/testregistry

# --- the run directory and the env file that cluster-down reads. From here on a
# failure tears down whatever was started.
id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
run=$(mktemp -d "/tmp/berth-cluster.XXXXXX")
node="berth-$id"
cgroup_root="berth-cluster-$id"
bridge="bk$id"
save() { printf '%s=%q\n' "$1" "${!1}" >>"$cluster_env"; }
for v in run id node cgroup_root bridge k8s_bin own crictl berthd; do save "$v"; done
record_sysctls >"$run/sysctls.before"
list_chains iptables >"$run/chains4.before"
list_chains ip6tables >"$run/chains6.before"
berth_parents >"$run/cgroups.before"
[ -e /var/lib/kubelet ] && touch "$run/var-lib-kubelet.before"
failed() {
	local rc=$?
	trap - EXIT
	log "cluster-up failed; logs in $run/logs (kept in $repo/_output/cluster/logs)"
	"$repo/hack/cluster-down.sh" || true
	exit "$rc"
}
trap failed EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$run/logs"

# spawn NAME CMD...: start CMD in a session of its own (it outlives this script)
# with its output in logs/NAME.log, and record its PID as NAME_pid.
spawn() {
	local name="$1"
	shift
	setsid "$@" >"$run/logs/$name.log" 2>&1 </dev/null &
	printf -v "${name}_pid" '%s' "$!"
	save "${name}_pid"
}

# wait_for WHAT SECONDS PID CMD...: until CMD succeeds; fail when PID exits.
wait_for() {
	local what="$1" secs="$2" pid="$3" i
	shift 3
	for ((i = 0; i < secs * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		running "$pid" || { tail -n 30 "$run/logs/$what.log" >&2; die "$what exited"; }
		sleep 0.2
	done
	tail -n 30 "$run/logs/$what.log" >&2
	die "$what not ready after ${secs}s"
}

# --- the loopback registry.
spawn registry "$own/testregistry" -addr 127.0.0.1:0
wait_registry "$registry_pid" "$run/logs/registry.log" "$run/logs/registry.log"
save registry

# --- addresses: a pod /24 of 10.197.0.0/16 and a service /24 of 10.198.0.0/16
# that no interface uses, on a bridge this run makes. Its gateway address is the
# node's IP (kubelet refuses a loopback one; apiserver reaches kubelet there).
pod_net=$(pick_subnet 10.197)
service_net=$(pick_subnet 10.198)
node_ip="$pod_net.1"
service_ip="$service_net.1"
save pod_net
save service_net
save node_ip
ip link add "$bridge" type bridge
ip addr add "$node_ip/24" dev "$bridge"
ip link set "$bridge" up
echo 1 >/proc/sys/net/ipv4/ip_forward
write_bridge_conflist "$run/net.d/10-berth-cluster.conflist" berth-cluster "$bridge" "$pod_net" "$run/ipam" "$node_ip"

# --- PKI and kubeconfigs.
pki="$run/pki"
make_pki "$pki" "$service_ip" "$node_ip" "$node"
etcd_port=$(free_port)
etcd_peer_port=$(free_port)
apiserver_port=$(free_port)
save apiserver_port
server="https://127.0.0.1:$apiserver_port"
for c in admin controller-manager scheduler kube-proxy kubelet; do
	kubeconfig "$run/$c.kubeconfig" "$server" "$pki" "$c"
done

# --- etcd and kube-apiserver.
spawn etcd "$k8s_bin/etcd" --name "$node" --data-dir "$run/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
	--initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster "$node=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync
wait_for etcd 60 "$etcd_pid" curl -sf "http://127.0.0.1:$etcd_port/health"
# No endpoint reconciler: the apiserver listens on loopback only, which the
# kubernetes Service cannot point at.
spawn apiserver "$k8s_bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver_port" \
	--endpoint-reconciler-type none --service-cluster-ip-range "$service_net.0/24" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
	--enable-admission-plugins NodeRestriction --allow-privileged \
	--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
	--kubelet-client-key "$pki/apiserver-kubelet-client.key" \
	--kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
	--service-account-issuer https://kubernetes.default.svc.cluster.local \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--api-audiences https://kubernetes.default.svc.cluster.local \
	--profiling=false --v 1
readyz() { curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz"; }
wait_for apiserver 120 "$apiserver_pid" readyz

# --- controller-manager and scheduler.
spawn controller_manager "$k8s_bin/kube-controller-manager" \
	--kubeconfig "$run/controller-manager.kubeconfig" \
	--authentication-kubeconfig "$run/controller-manager.kubeconfig" \
	--authorization-kubeconfig "$run/controller-manager.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
	--cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
	--root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
	--use-service-account-credentials --service-cluster-ip-range "$service_net.0/24" --v 1
spawn scheduler "$k8s_bin/kube-scheduler" --kubeconfig "$run/scheduler.kubeconfig" \
	--authentication-kubeconfig "$run/scheduler.kubeconfig" \
	--authorization-kubeconfig "$run/scheduler.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false --v 1

# --- berthd: pulls only through the loopback registry.
sock="$run/berth.sock"
save sock
write_berth_toml "$run/berth.toml" "$registry" "$run/net.d"
sed -i '1i cgroup_driver = "cgroupfs"' "$run/berth.toml"
mapfile -t berthd_argv < <(berthd_args "$run")
spawn berthd "$berthd" "${berthd_argv[@]}"
wait_for berthd 30 "$berthd_pid" "$crictl" --runtime-endpoint "unix://$sock" --timeout 2s version

# --- kube-proxy, iptables mode. It leaves conntrack sysctls and route_localnet
# alone (0 = do not set), and masquerades all service traffic: the pods share
# one bridge, so a reply from a backend must come back through the host to be
# un-DNATed.
cat >"$run/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $run/kube-proxy.kubeconfig
hostnameOverride: $node
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
clusterCIDR: $pod_net.0/24
# Lowering its own oom_score_adj needs CAP_SYS_RESOURCE, which this host lacks.
oomScoreAdj: 0
iptables:
  masqueradeAll: true
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
EOF
spawn proxy "$k8s_bin/kube-proxy" --config "$run/kube-proxy.yaml" --v 1

# --- kubelet: everything it writes lives in the run dir, its cgroups under a
# cgroupRoot of this run's own that exists in every hierarchy beforehand.
make_cgroup_root "$cgroup_root"
kubelet_port=$(free_port)
save kubelet_port
: >"$run/resolv.conf"
cat >"$run/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$sock
imageServiceEndpoint: unix://$sock
cgroupRoot: /$cgroup_root
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
systemCgroups: ""
kubeletCgroups: ""
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
oomScoreAdj: 0
podLogsDir: $run/pod-logs
volumePluginDir: $run/volume-plugins
resolvConf: $run/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
evictionPressureTransitionPeriod: 10s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
EOF
spawn kubelet "$k8s_bin/kubelet" --config "$run/kubelet.yaml" --kubeconfig "$run/kubelet.kubeconfig" \
	--root-dir "$run/kubelet" --cert-dir "$run/kubelet/pki" --hostname-override "$node" \
	--node-ip "$node_ip" --v 2
node_ready() {
	[ "$(kubectl_ get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_for kubelet 180 "$kubelet_pid" node_ready
# Pods need the default service account, which the controller-manager makes.
wait_for controller_manager 60 "$controller_manager_pid" kubectl_ -n default get serviceaccount default

trap - EXIT
log "cluster up in $(($(date +%s) - start))s: node $node on berthd $sock, apiserver $server"
log "export KUBECONFIG=$run/admin.kubeconfig   (also: hack/cluster-up.sh --kubeconfig)"
log "logs: $run/logs; stop with hack/cluster-down.sh"

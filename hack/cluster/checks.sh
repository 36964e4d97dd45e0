# The checks of hack/cluster-e2e.sh, one function each, run in namespace $ns
# through k (kubectl -n $ns). Each prints what went wrong and returns non-zero
# on failure. Sourced, not run.

# shellcheck shell=bash
busybox=registry.k8s.io/e2e-test-images/busybox:1.29-2
nginx=registry.k8s.io/e2e-test-images/nginx:1.14-2
httpd=registry.k8s.io/e2e-test-images/httpd:2.4.39-4

# expect WHAT WANT GOT: fail unless GOT contains WANT.
expect() {
	if [[ $3 != *"$2"* ]]; then
		echo "$1: want \"$2\", got: $3"
		return 1
	fi
}

# sleeper NAME: a busybox pod that sleeps, Running.
sleeper() {
	k run "$1" --image "$busybox" --restart Never --command -- sh -c 'trap "exit 0" TERM; while true; do sleep 1; done' &&
		k wait --for condition=Ready "pod/$1" --timeout 90s
}

# client: the pod the network checks fetch from.
client() {
	k get pod client >/dev/null 2>&1 || sleeper client >/dev/null
}

deployment_rolls_out() {
	k create deployment web --image "$nginx" --replicas 3 --port 80 &&
		k rollout status deployment/web --timeout 120s &&
		[ "$(k get deployment web -o jsonpath='{.status.readyReplicas}')" = 3 ]
}

# fetch_service: the body the web Service answers a client pod with.
fetch_service() {
	local ip
	ip=$(k get service web -o jsonpath='{.spec.clusterIP}')
	k exec client -- wget -q -T 5 -O - "http://$ip/"
}

service_reaches_pods() {
	local out i
	k expose deployment web --port 80 >/dev/null && client || return 1
	# kube-proxy writes the rules a moment after the endpoints appear.
	for ((i = 0; i < 30; i++)); do
		out=$(fetch_service 2>&1) && break
		sleep 1
	done
	expect "GET service" "Welcome to nginx" "$out"
}

deployment_rolls_update() {
	local out i images
	k set image deployment/web "nginx=$httpd" >/dev/null &&
		k rollout status deployment/web --timeout 120s || return 1
	# rollout status returns once the old replicas are terminated; their pod objects go a
	# moment later, when kubelet has stopped their sandboxes and finalized them.
	for ((i = 0; i < 60; i++)); do
		images=$(k get pods -l app=web -o jsonpath='{range .items[*]}{.spec.containers[0].image}{" "}{.status.phase}{"\n"}{end}')
		grep -q "$nginx" <<<"$images" || break
		sleep 1
	done
	if grep -q "$nginx" <<<"$images"; then
		echo "old pods left after 60 s: $images"
		return 1
	fi
	for ((i = 0; i < 30; i++)); do
		out=$(fetch_service 2>&1) && [[ $out == *"It works"* ]] && break
		sleep 1
	done
	expect "GET service after the update" "It works" "$out"
}

exec_plain() {
	client || return 1
	local out
	out=$(k exec client -- sh -c 'echo out; echo err >&2; exit 0' 2>&1) || return 1
	expect "exec" "out" "$out" && expect "exec stderr" "err" "$out" || return 1
	k exec client -- sh -c 'exit 7'
	[ $? = 7 ] || { echo "exit code of exec not 7"; return 1; }
}

exec_stdin() {
	client || return 1
	local out
	out=$(printf 'hello from stdin\n' | k exec -i client -- cat)
	expect "exec -i" "hello from stdin" "$out"
}

exec_tty() {
	client || return 1
	local out
	# script(1) gives kubectl the terminal that -t wants.
	out=$(timeout 60 script -qec "$k8s_bin/kubectl --kubeconfig $run/admin.kubeconfig -n $ns exec -it client -- sh -c 'tty; stty size; exit 3'" /dev/null)
	local rc=$?
	expect "exec -it tty" "/dev/pts/" "$out" || return 1
	[ "$rc" = 3 ] || { echo "exec -it exit code $rc, want 3: $out"; return 1; }
}

logs_follow() {
	local out
	k run logger --image "$busybox" --restart Never --command -- \
		sh -c 'for i in 1 2 3 4 5; do echo line $i; sleep 1; done' >/dev/null || return 1
	k wait --for condition=Ready pod/logger --timeout 60s >/dev/null 2>&1
	out=$(timeout 60 "$k8s_bin/kubectl" --kubeconfig "$run/admin.kubeconfig" -n "$ns" logs -f logger) ||
		{ echo "logs -f: $out"; return 1; }
	[ "$(grep -c '^line ' <<<"$out")" = 5 ] || { echo "logs -f: want 5 lines, got: $out"; return 1; }
	k delete pod logger --wait=false >/dev/null
}

attach() {
	local out
	k apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: attached}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: $busybox
    command: [sh, -c, 'read line; echo "got: \$line"; sleep 2']
    stdin: true
    stdinOnce: true
EOF
	k wait --for condition=Ready pod/attached --timeout 60s >/dev/null || return 1
	out=$(printf 'ping\n' | timeout 60 "$k8s_bin/kubectl" --kubeconfig "$run/admin.kubeconfig" -n "$ns" attach -i attached 2>&1)
	expect "attach" "got: ping" "$out" || return 1
	k delete pod attached --wait=false >/dev/null
}

port_forward() {
	local port pf out i pod
	pod=$(k get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
	port=$(free_port)
	"$k8s_bin/kubectl" --kubeconfig "$run/admin.kubeconfig" -n "$ns" port-forward "pod/$pod" "$port:80" >/dev/null 2>&1 &
	pf=$!
	for ((i = 0; i < 50; i++)); do
		out=$(curl -s --max-time 5 "http://127.0.0.1:$port/") && break
		sleep 0.2
	done
	# A second connection over the same forward.
	out+=$(curl -s --max-time 5 "http://127.0.0.1:$port/")
	kill "$pf" 2>/dev/null
	wait "$pf" 2>/dev/null
	expect "port-forward" "It works" "$out"
}

copy() {
	client || return 1
	local src dst
	src=$(mktemp) dst=$(mktemp -d)
	head -c 100000 /dev/urandom >"$src"
	k cp "$src" client:/tmp/payload >/dev/null &&
		k cp client:/tmp/payload "$dst/back" >/dev/null 2>&1 &&
		cmp "$src" "$dst/back"
	local rc=$?
	rm -rf "$src" "$dst"
	return $rc
}

summary_stats() {
	local raw
	raw=$(kubectl_ get --raw "/api/v1/nodes/$node/proxy/stats/summary") || return 1
	# The client pod's container has a working set and a CPU figure.
	grep -q '"name": *"client"' <<<"$raw" || { echo "no pod client in the summary"; return 1; }
	grep -Eq '"workingSetBytes": *[1-9]' <<<"$raw" || { echo "no non-zero workingSetBytes"; return 1; }
	grep -Eq '"usageCoreNanoSeconds": *[1-9]' <<<"$raw" || { echo "no non-zero usageCoreNanoSeconds"; return 1; }
}

job_completes() {
	k create job finisher --image "$busybox" -- sh -c 'echo finished' >/dev/null &&
		k wait --for condition=Complete job/finisher --timeout 90s >/dev/null || return 1
	expect "job logs" "finished" "$(k logs job/finisher)"
}

volumes() {
	local out
	k create configmap settings --from-literal greeting=hello-config >/dev/null &&
		k create secret generic creds --from-literal password=s3cret >/dev/null || return 1
	k apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: volumes}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: $busybox
    command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: greeting}}
    volumeMounts:
    - {name: config, mountPath: /etc/config}
    - {name: secret, mountPath: /etc/secret}
    - {name: token, mountPath: /var/run/token}
  volumes:
  - name: config
    configMap: {name: settings}
  - name: secret
    secret: {secretName: creds}
  - name: token
    projected:
      sources:
      - serviceAccountToken: {path: token, audience: berth-e2e, expirationSeconds: 3600}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
EOF
	k wait --for condition=Ready pod/volumes --timeout 90s >/dev/null || return 1
	out=$(k exec volumes -- sh -c 'cat /etc/config/greeting; echo; cat /etc/secret/password; echo; echo env=$GREETING; cat /var/run/token/token | cut -d. -f1-3 | tr -cd . ; echo dots')
	expect "configMap volume" "hello-config" "$out" && expect "secret volume" "s3cret" "$out" &&
		expect "configMap env" "env=hello-config" "$out" && expect "token is a JWT" "..dots" "$out" || return 1
	k exec volumes -- cat /var/run/token/ca.crt | cmp - "$run/pki/ca.crt" ||
		{ echo "projected ca.crt is not the cluster CA"; return 1; }
	k delete pod volumes --wait=false >/dev/null
}

oom_killed() {
	local reason code i
	k apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: $busybox
    command: [sh, -c, 'x=\$(head -c 200000000 /dev/zero | tr "\\\\0" a); sleep 30']
    resources:
      limits: {memory: 32Mi}
EOF
	for ((i = 0; i < 90; i++)); do
		reason=$(k get pod hog -o jsonpath='{.status.containerStatuses[0].state.terminated.reason}')
		[ -n "$reason" ] && break
		sleep 1
	done
	code=$(k get pod hog -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')
	[ "$reason" = OOMKilled ] && [ "$code" = 137 ] ||
		{ echo "terminated reason \"$reason\" exit code \"$code\", want OOMKilled 137"; return 1; }
}

graceful_delete() {
	local dir t took out
	dir="$run/prestop-$ns"
	mkdir -p "$dir"
	k apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: c
    image: $busybox
    command: [sh, -c, 'trap "echo term >> /out/log; exit 0" TERM; while true; do sleep 0.2; done']
    lifecycle:
      preStop:
        exec: {command: [sh, -c, 'echo prestop >> /out/log; sleep 3']}
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - name: out
    hostPath: {path: $dir}
EOF
	k wait --for condition=Ready pod/graceful --timeout 60s >/dev/null || return 1
	t=$(date +%s)
	k delete pod graceful --timeout 60s >/dev/null || return 1
	took=$(($(date +%s) - t))
	out=$(tr '\n' ' ' <"$dir/log" 2>/dev/null)
	rm -rf "$dir"
	[ "$out" = "prestop term " ] || { echo "want preStop then TERM, got: $out"; return 1; }
	((took >= 3 && took < 30)) || { echo "deletion took ${took}s, want 3s (preStop) to 30s (grace)"; return 1; }
}

grace_period_kill() {
	local t took
	k apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: $busybox
    command: [sh, -c, 'trap "" TERM; while true; do sleep 0.2; done']
EOF
	k wait --for condition=Ready pod/stubborn --timeout 60s >/dev/null || return 1
	t=$(date +%s)
	k delete pod stubborn --timeout 60s >/dev/null || return 1
	took=$(($(date +%s) - t))
	((took >= 5 && took < 25)) || { echo "deletion took ${took}s, want 5s (grace) to 25s"; return 1; }
}

drain() {
	local left i
	kubectl_ drain "$node" --ignore-daemonsets --delete-emptydir-data --force --timeout 120s >/dev/null || return 1
	left=$(k get pods --field-selector status.phase=Running -o name)
	[ -z "$left" ] || { echo "running after drain: $left"; kubectl_ uncordon "$node"; return 1; }
	[ "$(kubectl_ get node "$node" -o jsonpath='{.spec.unschedulable}')" = true ] ||
		{ echo "node not cordoned"; return 1; }
	kubectl_ uncordon "$node" >/dev/null || return 1
	k rollout status deployment/web --timeout 120s >/dev/null ||
		{ echo "web did not come back after uncordon"; return 1; }
}

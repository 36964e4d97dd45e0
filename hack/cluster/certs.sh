# Sourced by hack/cluster-up.sh: the cluster's PKI, made with openssl. One CA
# signs every certificate (the controller-manager signs with it too, so
# service-account token volumes carry a real ca.crt); one ECDSA P-256 key pair (quick to make) signs
# and verifies service-account tokens.

# shellcheck shell=bash

# sign PKI NAME CN O [SAN]: NAME.key and NAME.crt signed by PKI/ca, valid for a
# day, client and server use.
sign() {
	local pki="$1" name="$2" cn="$3" o="$4" san="${5:-}" ext
	ext="$pki/$name.ext"
	{
		echo "basicConstraints = CA:FALSE"
		echo "keyUsage = critical, digitalSignature, keyEncipherment"
		echo "extendedKeyUsage = serverAuth, clientAuth"
		[ -z "$san" ] || echo "subjectAltName = $san"
	} >"$ext"
	local subj="/CN=$cn"
	[ -z "$o" ] || subj="/O=$o$subj"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/$name.key" -subj "$subj" \
		-out "$pki/$name.csr" 2>/dev/null
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -days 1 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
	rm -f "$pki/$name.csr" "$ext"
}

# make_pki PKI SERVICE_IP NODE_IP NODE_NAME: the CA, the apiserver's serving
# certificate, a client certificate per component, and the service-account
# key pair.
make_pki() {
	local pki="$1" service_ip="$2" node_ip="$3" node="$4"
	mkdir -p "$pki"
	chmod 700 "$pki"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/ca.key" -days 1 \
		-subj "/CN=berth-cluster-ca" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$pki/ca.crt" 2>/dev/null
	sign "$pki" apiserver kube-apiserver "" \
		"IP:127.0.0.1,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	sign "$pki" apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
	sign "$pki" admin berth-cluster-admin system:masters
	sign "$pki" controller-manager system:kube-controller-manager ""
	sign "$pki" scheduler system:kube-scheduler ""
	sign "$pki" kube-proxy system:kube-proxy ""
	sign "$pki" kubelet "system:node:$node" system:nodes
	sign "$pki" kubelet-serving "$node" "" "IP:$node_ip,IP:127.0.0.1,DNS:$node"
	openssl ecparam -genkey -name prime256v1 -noout -out "$pki/sa.key" 2>/dev/null
	openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# kubeconfig FILE SERVER PKI NAME: a kubeconfig that authenticates with
# PKI/NAME.crt.
kubeconfig() {
	local file="$1" server="$2" pki="$3" name="$4"
	cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $name
  user:
    client-certificate: $pki/$name.crt
    client-key: $pki/$name.key
contexts:
- name: berth
  context: {cluster: berth, user: $name}
current-context: berth
EOF
}

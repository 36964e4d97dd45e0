# A lane's own pod network: a bridge with a /24 no host interface or route uses,
# host-local records in the run directory, portmap (snat, so host ports answer
# on 127.0.0.1) and loopback; never masqueraded. And the removal of portmap's
# shared nat chains when the lane made them. Sourced, not run; needs log/die.
# shellcheck shell=bash

# pick_subnet PREFIX: the first three octets ("10.196.7") of a /24 in PREFIX.0.0/16
# that no address or route of the host is in.
pick_subnet() {
	local prefix="$1" c i
	for ((i = 0; i < 256; i++)); do
		c="$prefix.$(((RANDOM + i) % 256))"
		ip -4 -o addr show | grep -q " $c\." && continue
		ip -4 route show | grep -q "^$c\." && continue
		echo "$c"
		return
	done
	die "no free /24 in $prefix.0.0/16"
}

# write_bridge_conflist FILE NAME BRIDGE NET24 IPAMDIR [GATEWAY]: a conflist for
# bridge BRIDGE serving NET24.0/24. With GATEWAY, pods also get their default
# route through it (the cluster lane's Service IPs are reached that way).
write_bridge_conflist() {
	local file="$1" name="$2" bridge="$3" net="$4" ipam="$5" gw="${6:-}"
	local range="{\"subnet\": \"$net.0/24\"}" default=""
	if [ -n "$gw" ]; then
		range="{\"subnet\": \"$net.0/24\", \"gateway\": \"$gw\"}"
		default=' "isDefaultGateway": true,'
	fi
	mkdir -p "$(dirname "$file")"
	cat >"$file" <<EOF2
{"cniVersion": "1.0.0", "name": "$name", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true,$default "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[$range]], "dataDir": "$ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
  {"type": "loopback"}]}
EOF2
}

# delete_bridge BRIDGE: removes the lane's bridge if it is there.
delete_bridge() {
	[ -n "${1:-}" ] || return 0
	ip link show "$1" >/dev/null 2>&1 || return 0
	ip link del "$1" || { log "cannot delete bridge $1"; return 1; }
}

portmap_chains="CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK"

# existing_portmap_chains: those of portmap's shared nat chains that exist now.
existing_portmap_chains() {
	local c
	for c in $portmap_chains; do
		iptables -w -t nat -S "$c" >/dev/null 2>&1 && printf ' %s' "$c"
	done
	echo
}

# remove_portmap_chains PREEXISTING: removes portmap's shared chains not named in
# PREEXISTING (what existing_portmap_chains said before the run), unless a pod (of
# any runtime on this host) still forwards ports through them. Fails when one
# cannot be removed.
remove_portmap_chains() {
	local before=" $1 " c rc=0
	iptables -w -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A' && return 0
	for c in $portmap_chains; do
		[[ $before == *" $c "* ]] && continue
		iptables -w -t nat -S "$c" >/dev/null 2>&1 || continue
		while iptables -w -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
		while iptables -w -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
		while iptables -w -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j "$c" 2>/dev/null; do :; done
		iptables -w -t nat -F "$c" && iptables -w -t nat -X "$c" || { log "cannot remove chain $c"; rc=1; }
	done
	return "$rc"
}

package network

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/network/cnitest"
)

func ifbLinks(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "bwp") {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestBandwidthCapability checks that limits from the pod's annotations reach the
// bandwidth plugin: a token bucket on the host veth (ingress) and an ifb device (egress),
// both gone after Teardown.
func TestBandwidthCapability(t *testing.T) {
	n := newTestNet(t, netOpts{bandwidth: true})
	if _, err := os.Stat(pluginDir + "/bandwidth"); err != nil {
		t.Skip("no bandwidth plugin")
	}
	ctx := testCtx(t)
	before := ifbLinks(t)
	p := n.pod(t, "shaped")
	bw, err := BandwidthFromAnnotations(map[string]string{IngressBandwidthAnnotation: "10M", EgressBandwidthAnnotation: "20M"})
	if err != nil {
		t.Fatal(err)
	}
	p.Bandwidth = bw
	r, err := n.m.Setup(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	veth := hostVeth(t, r)
	out, err := exec.Command("tc", "qdisc", "show", "dev", veth).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tbf") {
		t.Errorf("no token bucket on %s: %v: %s", veth, err, out)
	}
	var added []string
	for _, l := range ifbLinks(t) {
		if !slices.Contains(before, l) {
			added = append(added, l)
		}
	}
	if len(added) != 1 {
		t.Errorf("ifb devices added: %v, want one", added)
	}
	t.Cleanup(func() {
		for _, l := range added {
			deleteLink(t, l)
		}
	})
	if err := n.m.Teardown(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, l := range added {
		if cnitest.LinkExists(l) {
			t.Errorf("ifb device %s left after Teardown", l)
		}
	}
}

package network

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
)

// rollbackTimeout bounds the DEL that undoes a failed ADD; it runs even when the caller's
// context is already done.
const rollbackTimeout = time.Minute

// attachment is one network a pod is (to be) attached to, with the arguments of the call.
type attachment struct {
	list *libcni.NetworkConfigList
	rt   *libcni.RuntimeConf
}

// Setup attaches the pod to the network: ADD of the configured network on eth0 and, when
// that network does not bring lo up itself, of berth's loopback network, both at once.
// On failure it undoes whatever part of the ADDs ran, so a failed Setup leaves nothing
// behind.
func (m *Manager) Setup(ctx context.Context, pod Pod) (Result, error) {
	if err := pod.validate(); err != nil {
		return Result{}, err
	}
	if ok, err := nspin.IsPinned(pod.NetNS); err != nil || !ok {
		return Result{}, errdefs.InvalidArgument(fmt.Sprintf("network: %s: %q is not a network namespace (%v)", pod, pod.NetNS, err))
	}
	c, _, err := m.usable()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", pod, err)
	}
	start := time.Now()
	if len(pod.IPRanges) == 0 {
		pod.IPRanges = m.podCIDRRanges()
	}
	rt := pod.runtimeConf(pod.NetNS)
	list, err := forPod(c.list, rt.CapabilityArgs)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", pod, err)
	}
	atts := []attachment{{list, rt}} // the pod's network first: its result is the pod's
	if c.ownLoopback {
		atts = append(atts, attachment{loopbackList, pod.loopbackConf(pod.NetNS)})
	}
	var res types.Result
	for attempt := 1; ; attempt++ {
		res, err = m.add(ctx, pod, atts)
		if err == nil || attempt == maxAddAttempts || !lostRace(err) || ctx.Err() != nil {
			break
		}
		m.log.Info("pod network setup lost a race with another pod's; retrying", "pod", pod.String(), "error", err)
		time.Sleep(time.Duration(attempt*(10+rand.IntN(20))) * time.Millisecond)
	}
	if err != nil {
		return Result{}, err
	}
	out, err := toResult(c.list.Name, res)
	if err != nil {
		m.rollback(ctx, pod, atts)
		return Result{}, err
	}
	m.log.Debug("pod network set up", "pod", pod.String(), "network", c.list.Name, "ips", out.IPs, "took", time.Since(start))
	return out, nil
}

// add runs the ADDs of atts at once and, if any fails, undoes all of them. It returns the
// result of the first attachment.
func (m *Manager) add(ctx context.Context, pod Pod, atts []attachment) (types.Result, error) {
	results := make([]types.Result, len(atts))
	errs := make([]error, len(atts))
	var wg sync.WaitGroup
	for i, a := range atts {
		wg.Go(func() {
			results[i], errs[i] = m.cni.AddNetworkList(ctx, a.list, a.rt)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: network %q: %w", pod, a.list.Name, withCtx(ctx, errs[i]))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		m.rollback(ctx, pod, atts)
		return nil, err
	}
	return results[0], nil
}

// maxAddAttempts bounds the retries of an ADD that lost a race (see lostRace).
const maxAddAttempts = 3

// lostRace reports whether an ADD failed only because another pod's ADD ran at the same
// time. portmap creates its shared iptables chains (CNI-HOSTPORT-*) with check-then-create,
// so two pods with host ports set up at once on a node without those chains make one of
// them fail with "File exists" (nf_tables) or "already exists" (legacy); nf_tables also
// reports contention as "Resource temporarily unavailable". Retried after the undo, the
// ADD finds the chains in place.
func lostRace(err error) bool {
	s := err.Error()
	return strings.Contains(s, "iptables") && (strings.Contains(s, "File exists") ||
		strings.Contains(s, "already exists") || strings.Contains(s, "Resource temporarily unavailable"))
}

// rollback DELs the attachments of a failed Setup.
func (m *Manager) rollback(ctx context.Context, pod Pod, atts []attachment) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if err := m.del(ctx, pod, atts); err != nil {
		m.log.Warn("undo of failed pod network setup failed; Teardown will retry", "pod", pod.String(), "error", err)
	}
}

// Teardown detaches the pod from its networks. It DELs exactly what the ADDs did, from
// libcni's cache (configuration, arguments and result as they were at ADD time), so a
// configuration changed since then or a restarted berthd does not matter. It works when
// the namespace is gone (plugins get an empty CNI_NETNS and release what lives outside
// it: addresses, iptables rules) and when plugin state is partially gone. With nothing
// cached (a second Teardown, or a Setup that never ran) it DELs with the current
// configuration, which plugins treat as a no-op. Teardown is idempotent.
//
// Teardown is faster when the namespace is already gone: the plugins then leave the
// pod's veth to the kernel, which removes it with the namespace.
func (m *Manager) Teardown(ctx context.Context, pod Pod) error {
	if err := pod.validate(); err != nil {
		return err
	}
	netns := liveNetNS(pod.NetNS)
	atts, err := m.cached(pod, netns)
	if err != nil {
		return err
	}
	if len(atts) == 0 {
		if m.current().none {
			// No network has been configured, and no ADD of this pod was recorded:
			// there is nothing any plugin could undo (a RunPodSandbox refused while
			// the node waits for its cluster's network).
			m.log.Debug("no network configured and nothing cached: nothing to tear down", "pod", pod.String())
			return nil
		}
		c, _, err := m.usable()
		if err != nil {
			return fmt.Errorf("%s: nothing cached to tear down and %w", pod, err)
		}
		rt := pod.runtimeConf(netns)
		list, err := forPod(c.list, rt.CapabilityArgs)
		if err != nil {
			return fmt.Errorf("%s: %w", pod, err)
		}
		atts = append(atts, attachment{list, rt})
		if c.ownLoopback {
			atts = append(atts, attachment{loopbackList, pod.loopbackConf(netns)})
		}
	}
	start := time.Now()
	if err := m.del(ctx, pod, atts); err != nil {
		return err
	}
	m.log.Debug("pod network torn down", "pod", pod.String(), "took", time.Since(start))
	return nil
}

// del DELs every attachment, all at once (they are independent), and reports every failure.
func (m *Manager) del(ctx context.Context, pod Pod, atts []attachment) error {
	errs := make([]error, len(atts))
	var wg sync.WaitGroup
	for i, a := range atts {
		wg.Go(func() {
			err := checkPlugins(m.cfg.BinDirs, a.list)
			if err == nil {
				err = withCtx(ctx, m.cni.DelNetworkList(ctx, a.list, a.rt))
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: network %q: %w", pod, a.list.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Check asks the plugins whether the pod's attachments are still as ADD left them.
func (m *Manager) Check(ctx context.Context, pod Pod) error {
	if err := pod.validate(); err != nil {
		return err
	}
	netns := liveNetNS(pod.NetNS)
	if netns == "" {
		return errdefs.NotFound(fmt.Sprintf("network: %s: network namespace %q is gone", pod, pod.NetNS))
	}
	atts, err := m.cached(pod, netns)
	if err != nil {
		return err
	}
	if len(atts) == 0 {
		return errdefs.NotFound(fmt.Sprintf("network: %s: not attached to any network", pod))
	}
	for _, a := range atts {
		err := checkPlugins(m.cfg.BinDirs, a.list)
		if err == nil {
			err = withCtx(ctx, m.cni.CheckNetworkList(ctx, a.list, a.rt))
		}
		if err != nil {
			return fmt.Errorf("%s: network %q: %w", pod, a.list.Name, err)
		}
	}
	return nil
}

// CachedResult returns what Setup returned for the pod, from libcni's cache: what
// recovery needs after a restart when its own record of the pod lacks it.
func (m *Manager) CachedResult(pod Pod) (Result, error) {
	atts, err := m.cached(pod, "")
	if err != nil {
		return Result{}, err
	}
	for _, a := range atts {
		if a.rt.IfName != podIfName {
			continue
		}
		r, err := m.cni.GetNetworkListCachedResult(a.list, a.rt)
		if err != nil || r == nil {
			return Result{}, fmt.Errorf("%s: network %q: cached result: %w", pod, a.list.Name, cmp.Or(err, errdefs.ErrNotFound))
		}
		return toResult(a.list.Name, r)
	}
	return Result{}, errdefs.NotFound(fmt.Sprintf("network: %s: no cached network result", pod))
}

// AttachedPods lists the ids of the pods that have an attachment recorded in the cache:
// for recovery, which tears down those it no longer knows.
func (m *Manager) AttachedPods() ([]string, error) {
	recs, err := m.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("network: read CNI cache: %w", err)
	}
	var ids []string
	for _, r := range recs {
		if !slices.Contains(ids, r.ContainerID) {
			ids = append(ids, r.ContainerID)
		}
	}
	return ids, nil
}

// cached returns the pod's attachments recorded at ADD time. netns overrides
// the recorded namespace path when set; otherwise the recorded one is used if still live.
func (m *Manager) cached(pod Pod, netns string) ([]attachment, error) {
	recs, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		return nil, fmt.Errorf("%s: read CNI cache: %w", pod, err)
	}
	atts := make([]attachment, 0, len(recs))
	for _, r := range recs {
		list, err := libcni.NetworkConfFromBytes(r.Config)
		if err != nil {
			return nil, fmt.Errorf("%s: cached configuration of network %q: %w", pod, r.Network, err)
		}
		rt := &libcni.RuntimeConf{
			ContainerID:    r.ContainerID,
			NetNS:          cmp.Or(netns, liveNetNS(r.NetNS)),
			IfName:         r.IfName,
			Args:           r.CniArgs,
			CapabilityArgs: r.CapabilityArgs,
		}
		atts = append(atts, attachment{list, rt})
	}
	return atts, nil
}

// liveNetNS returns path when it is a live namespace, else "" (what CRI runtimes hand
// plugins on DEL once the namespace is gone).
func liveNetNS(path string) string {
	if path == "" {
		return ""
	}
	if ok, _ := nspin.IsPinned(path); ok {
		return path
	}
	return ""
}

// withCtx adds the context's error to a plugin error: a plugin killed because the
// deadline passed should read as a deadline, not as "signal: killed".
func withCtx(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

package network

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/libcni"
)

// idleWithout names plugins that do nothing at all for a pod that gives them none of
// their capability arguments: ADD passes the previous result through, DEL and CHECK
// return at once. Each exec of a plugin costs milliseconds, so forPod leaves them out of
// such a pod's chain. The trimmed chain is also what libcni caches, so DEL, CHECK and a
// restarted berthd see the same chain ADD ran.
var idleWithout = map[string]bool{"portmap": true, "bandwidth": true}

// forPod returns the chain to run for a pod with the given capability arguments: list
// without the plugins that would idle. A plugin with a static runtimeConfig of its own
// always runs.
func forPod(list *libcni.NetworkConfigList, caps map[string]any) (*libcni.NetworkConfigList, error) {
	keep := make([]*libcni.PluginConfig, 0, len(list.Plugins))
	for _, p := range list.Plugins {
		if !idles(p, caps) {
			keep = append(keep, p)
		}
	}
	if len(keep) == len(list.Plugins) || len(keep) == 0 {
		return list, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return nil, fmt.Errorf("network %q: %w", list.Name, err)
	}
	plugins := make([]json.RawMessage, len(keep))
	for i, p := range keep {
		plugins[i] = p.Bytes
	}
	b, err := json.Marshal(plugins)
	if err != nil {
		return nil, err
	}
	raw["plugins"] = b
	if raw["loadOnlyInlinedPlugins"] == nil { // every plugin is inline now
		raw["loadOnlyInlinedPlugins"] = json.RawMessage("true")
	}
	if b, err = json.Marshal(raw); err != nil {
		return nil, err
	}
	trimmed := *list
	trimmed.Plugins, trimmed.Bytes, trimmed.LoadOnlyInlinedPlugins = keep, b, true
	return &trimmed, nil
}

// idles reports whether plugin p would do nothing for a pod with capability arguments caps.
func idles(p *libcni.PluginConfig, caps map[string]any) bool {
	if !idleWithout[p.Network.Type] {
		return false
	}
	for c, on := range p.Network.Capabilities {
		if on && caps[c] != nil {
			return false
		}
	}
	var static struct {
		RuntimeConfig json.RawMessage `json:"runtimeConfig"`
	}
	if err := json.Unmarshal(p.Bytes, &static); err != nil || len(static.RuntimeConfig) > 0 {
		return false
	}
	return true
}

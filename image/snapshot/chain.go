package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
)

// ChainIDs returns the chain ID of every layer, base layer first, from the diffIDs of
// the layers in the same order (the image config's rootfs.diff_ids).
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

package reference

import "strings"

// MinIDPrefix is the shortest bare hex string taken as an image ID prefix. Shorter hex
// strings ("cafe", "abc") are far likelier to be image names, and kubelet must never
// get another image back for a name it has not pulled. With the "sha256:" prefix any
// length is an ID prefix.
const MinIDPrefix = 12

const idHexLen = 64

// ParseID recognises a full image ID, "sha256:<64 hex>" or the bare 64 hex digits, and
// returns it as "sha256:<hex>".
func ParseID(s string) (string, bool) {
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) != idHexLen || !isHex(h) {
		return "", false
	}
	return "sha256:" + h, true
}

// IDPrefix recognises an image ID prefix, "sha256:<1-64 hex>" or at least MinIDPrefix
// bare hex digits, and returns it as "sha256:<hex prefix>".
func IDPrefix(s string) (string, bool) {
	h, explicit := strings.CutPrefix(s, "sha256:")
	minLen := MinIDPrefix
	if explicit {
		minLen = 1
	}
	if len(h) < minLen || len(h) > idHexLen || !isHex(h) {
		return "", false
	}
	return "sha256:" + h, true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

package network

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// The pod annotations kubelet uses to ask for traffic shaping.
const (
	IngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	EgressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// Kubernetes rejects bandwidth limits outside [1k, 1P] bits per second.
const (
	minBandwidth = 1_000
	maxBandwidth = 1_000_000_000_000_000
)

// DefaultBurst is the burst, in bits, that goes with a rate from an annotation: the
// annotations carry no burst, and this is the largest the bandwidth plugin's token bucket
// accepts without complaint (what other CRI runtimes pass too).
const DefaultBurst = math.MaxUint32

// BandwidthFromAnnotations reads the ingress/egress bandwidth annotations of a pod. It
// returns nil when neither is set, and an error wrapping ErrInvalidArgument when a value
// is not a quantity or is out of Kubernetes' range.
func BandwidthFromAnnotations(annotations map[string]string) (*Bandwidth, error) {
	var bw Bandwidth
	for _, a := range []struct {
		key         string
		rate, burst *uint64
	}{
		{IngressBandwidthAnnotation, &bw.IngressRate, &bw.IngressBurst},
		{EgressBandwidthAnnotation, &bw.EgressRate, &bw.EgressBurst},
	} {
		s, ok := annotations[a.key]
		if !ok {
			continue
		}
		v, err := ParseQuantity(s)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("annotation %s: %v", a.key, err))
		}
		if v < minBandwidth || v > maxBandwidth {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("annotation %s: %s is outside 1k..1P bits per second", a.key, s))
		}
		*a.rate, *a.burst = uint64(v), DefaultBurst
	}
	if bw == (Bandwidth{}) {
		return nil, nil
	}
	return &bw, nil
}

// ParseQuantity parses a Kubernetes resource quantity ("10M", "1.5Gi", "100m", "1e3")
// and returns its value as Kubernetes' Quantity.Value() does: rounded away from zero to
// an integer, with magnitudes capped at math.MaxInt64.
//
// The grammar is Kubernetes': an optional sign, decimal digits with at most one point,
// then a suffix: a binary one (Ki Mi Gi Ti Pi Ei), a decimal one (n u m k M G T P E), or
// a decimal exponent (e3, E-2). No spaces.
func ParseQuantity(s string) (int64, error) {
	q, err := splitQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("quantity %q: %w", s, err)
	}
	base, exp, err := quantitySuffix(q.suffix)
	if err != nil {
		return 0, fmt.Errorf("quantity %q: %w", s, err)
	}
	mag := magnitude(q.digits, len(q.fraction), base, exp)
	if q.negative {
		return -mag, nil
	}
	return mag, nil
}

type quantityParts struct {
	negative bool
	digits   string // integer and fraction digits, leading zeros stripped
	fraction string // the digits after the point
	suffix   string
}

// splitQuantity splits s the way Kubernetes' parser does.
func splitQuantity(s string) (quantityParts, error) {
	var q quantityParts
	if s == "" {
		return q, fmt.Errorf("empty")
	}
	i := 0
	if s[0] == '+' || s[0] == '-' {
		q.negative = s[0] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	if i < len(s) && s[i] == '.' {
		i++
		fstart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		q.fraction = s[fstart:i]
	}
	if intPart == "" && q.fraction == "" {
		return q, fmt.Errorf("no digits")
	}
	q.digits = strings.TrimLeft(intPart+q.fraction, "0")
	q.suffix = s[i:]
	j := 0
	for j < len(q.suffix) && strings.IndexByte("eEinumkKMGTP", q.suffix[j]) >= 0 {
		j++
	}
	if j < len(q.suffix) && (q.suffix[j] == '+' || q.suffix[j] == '-') {
		j++
	}
	for j < len(q.suffix) && isDigit(q.suffix[j]) {
		j++
	}
	if j != len(q.suffix) {
		return q, fmt.Errorf("not a quantity")
	}
	return q, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quantitySuffix returns the base (2 or 10) and exponent a suffix stands for.
func quantitySuffix(s string) (base, exp int, err error) {
	switch s {
	case "":
		return 10, 0, nil
	case "Ki", "Mi", "Gi", "Ti", "Pi", "Ei":
		return 2, 10 * (strings.Index("KMGTPE", s[:1]) + 1), nil
	case "n", "u", "m", "k", "M", "G", "T", "P", "E":
		return 10, map[string]int{"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}[s], nil
	}
	if len(s) > 1 && (s[0] == 'e' || s[0] == 'E') {
		e, err := strconv.ParseInt(s[1:], 10, 32)
		if err == nil {
			return 10, int(e), nil
		}
	}
	return 0, 0, fmt.Errorf("unknown suffix %q", s)
}

// magnitude computes ceil(digits × 10^-fracLen × base^exp), capped at MaxInt64, without
// building huge numbers for huge exponents.
func magnitude(digits string, fracLen, base, exp int) int64 {
	if digits == "" {
		return 0
	}
	m, _ := new(big.Int).SetString(digits, 10)
	num, den := new(big.Int).Set(m), big.NewInt(1)
	pow := func(b, e int) *big.Int { return new(big.Int).Exp(big.NewInt(int64(b)), big.NewInt(int64(e)), nil) }
	scale := -fracLen // decimal exponent still to apply
	if base == 2 {
		num.Lsh(num, uint(exp))
	} else {
		scale += exp
	}
	// len(digits)-1+scale is the decimal exponent of the leading digit.
	switch lead := len(digits) - 1 + scale; {
	case lead >= 19:
		return math.MaxInt64
	case lead < -1 && base == 10:
		return 1 // a positive value below 0.1: rounds up to 1
	}
	if scale > 0 {
		num.Mul(num, pow(10, scale))
	} else {
		den.Mul(den, pow(10, -scale))
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return math.MaxInt64
	}
	return q.Int64()
}

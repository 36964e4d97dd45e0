package network

import (
	"math"
	"strconv"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "10", want: 10},
		{in: "+10", want: 10},
		{in: "-10", want: -10},
		{in: "10k", want: 10_000},
		{in: "10M", want: 10_000_000},
		{in: "1G", want: 1_000_000_000},
		{in: "2T", want: 2_000_000_000_000},
		{in: "1P", want: 1_000_000_000_000_000},
		{in: "1E", want: 1_000_000_000_000_000_000},
		{in: "1Ki", want: 1024},
		{in: "10Mi", want: 10 << 20},
		{in: "1Gi", want: 1 << 30},
		{in: "1Ti", want: 1 << 40},
		{in: "1.5Gi", want: 1610612736},
		{in: "1.5M", want: 1_500_000},
		{in: "0.5k", want: 500},
		{in: ".5k", want: 500},
		{in: "1.k", want: 1000},
		{in: "1.0001k", want: 1001}, // 1000.1 rounds up
		{in: "100m", want: 1},       // 0.1 rounds up, as Quantity.Value does
		{in: "1500m", want: 2},
		{in: "-1500m", want: -2}, // away from zero
		{in: "1n", want: 1},
		{in: "1u", want: 1},
		{in: "1e3", want: 1000},
		{in: "1E3", want: 1000},
		{in: "1.5e3", want: 1500},
		{in: "1e+3", want: 1000},
		{in: "15e-1", want: 2},
		{in: "1e-30", want: 1},
		{in: "0.000000000000000000000000000001", want: 1},
		{in: "0e100", want: 0},
		{in: "00010k", want: 10_000},
		{in: "1e100", want: math.MaxInt64}, // capped
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "9223372036854775808", want: math.MaxInt64},
		{in: "100Ei", want: math.MaxInt64},
		{in: "", wantErr: true},
		{in: "M", wantErr: true}, // the documented grammar wants a digit
		{in: ".", wantErr: true},
		{in: "-", wantErr: true},
		{in: "10K", wantErr: true}, // kilo is lower-case
		{in: "10 M", wantErr: true},
		{in: " 10", wantErr: true},
		{in: "10Mb", wantErr: true},
		{in: "10mi", wantErr: true},
		{in: "1i", wantErr: true},
		{in: "1e", wantErr: true},
		{in: "1.1.1", wantErr: true},
		{in: "1Mi3", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "0x10", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseQuantity(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBandwidthFromAnnotations(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		want    *Bandwidth
		wantErr bool
	}{
		{name: "none", ann: map[string]string{"other": "1M"}},
		{name: "ingress", ann: map[string]string{IngressBandwidthAnnotation: "10M"},
			want: &Bandwidth{IngressRate: 10_000_000, IngressBurst: DefaultBurst}},
		{name: "both", ann: map[string]string{IngressBandwidthAnnotation: "1Mi", EgressBandwidthAnnotation: "1.5G"},
			want: &Bandwidth{IngressRate: 1 << 20, IngressBurst: DefaultBurst, EgressRate: 1_500_000_000, EgressBurst: DefaultBurst}},
		{name: "lower bound", ann: map[string]string{EgressBandwidthAnnotation: "1k"},
			want: &Bandwidth{EgressRate: 1000, EgressBurst: DefaultBurst}},
		{name: "too small", ann: map[string]string{EgressBandwidthAnnotation: "999"}, wantErr: true},
		{name: "too large", ann: map[string]string{IngressBandwidthAnnotation: "2P"}, wantErr: true},
		{name: "negative", ann: map[string]string{IngressBandwidthAnnotation: "-10M"}, wantErr: true},
		{name: "garbage", ann: map[string]string{IngressBandwidthAnnotation: "fast"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BandwidthFromAnnotations(tt.ann)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"10M", "1.5Gi", "100m", "1e3", "-1E", ".5", "1e-30", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1000 {
			return
		}
		v, err := ParseQuantity(s)
		if err != nil {
			return
		}
		// Plain integers must parse as strconv does (within int64).
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n != v {
			t.Fatalf("ParseQuantity(%q) = %d, strconv says %d", s, v, n)
		}
	})
}

package sandbox

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestDialLoopback reaches servers bound to one loopback family only.
func TestDialLoopback(t *testing.T) {
	for _, tc := range []struct {
		name, network, addr string
	}{
		{"IPv4 only", "tcp4", "127.0.0.1:0"},
		{"IPv6 only", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s loopback here: %v", tc.network, err)
			}
			defer l.Close()
			go func() {
				if c, err := l.Accept(); err == nil {
					_, _ = c.Write([]byte("hi"))
					c.Close()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := dialLoopback(ctx, int32(l.Addr().(*net.TCPAddr).Port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			buf := make([]byte, 2)
			if _, err := conn.Read(buf); err != nil || string(buf) != "hi" {
				t.Fatalf("read %q, %v", buf, err)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if conn, err := dialLoopback(context.Background(), int32(port)); err == nil {
			conn.Close()
			t.Fatal("dial to a closed port succeeded")
		}
	})
}

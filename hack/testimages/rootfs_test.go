package testimages

import (
	"archive/tar"
	"strings"
	"testing"
)

func TestBusyboxRootfsLayout(t *testing.T) {
	applets := []string{"bin/ls", "usr/bin/env", "linuxrc", "sbin/ip", "usr/sbin/chroot", "bin/busybox"}
	files := BusyboxRootfs([]byte("ELF"), applets)
	index := map[string]int{}
	for i, f := range files {
		if _, dup := index[f.Path]; dup {
			t.Errorf("%s listed twice", f.Path)
		}
		index[f.Path] = i
	}
	bb, ok := index["bin/busybox"]
	if !ok || string(files[bb].Content) != "ELF" || files[bb].Mode != 0o755 {
		t.Fatalf("bin/busybox missing or wrong: %+v", files[bb])
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"bin/ls", true}, {"bin/env", true}, {"usr/bin/env", true}, {"bin/linuxrc", true},
		{"bin/ip", true}, {"sbin/ip", true}, {"usr/sbin/chroot", true}, {"bin/chroot", true},
		{"linuxrc", false}, {"usr/bin/ls", false},
	} {
		i, ok := index[tc.path]
		if ok != tc.want {
			t.Errorf("%s present = %v, want %v", tc.path, ok, tc.want)
			continue
		}
		if !ok {
			continue
		}
		f := files[i]
		if f.Type != tar.TypeLink || f.Link != "bin/busybox" {
			t.Errorf("%s: %+v, want a hard link to bin/busybox", tc.path, f)
		}
		if i < bb {
			t.Errorf("%s comes before its link target", tc.path)
		}
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "tmp", "root", "etc", "var"} {
		i, ok := index[d]
		if !ok || files[i].Type != tar.TypeDir {
			t.Errorf("directory %s missing", d)
		} else if i > bb {
			t.Errorf("directory %s comes after the files", d)
		}
	}
	if files[index["tmp"]].Mode != 0o1777 {
		t.Errorf("/tmp mode %o", files[index["tmp"]].Mode)
	}
}

func TestShadowFor(t *testing.T) {
	got := shadowFor("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
	want := "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
	if got != want {
		t.Errorf("shadowFor = %q, want %q", got, want)
	}
	if !strings.HasPrefix(shadowFor(Passwd), "root:*:") {
		t.Error("shadow of Passwd does not start with root")
	}
}

package monitor

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLineWriter(t *testing.T) {
	const ts = "2026-01-02T03:04:05.000000006Z"
	tests := []struct {
		name     string
		max      int
		terminal bool
		writes   []string
		want     []string // formatted lines without the timestamp and stream
	}{
		{name: "full lines", max: 16, writes: []string{"a\nb\n"}, want: []string{"F a", "F b"}},
		{name: "line split across writes", max: 16, writes: []string{"hel", "lo\nwor", "ld\n"}, want: []string{"F hello", "F world"}},
		{name: "empty lines", max: 16, writes: []string{"\n\nx\n"}, want: []string{"F ", "F ", "F x"}},
		{name: "exactly max", max: 4, writes: []string{"abcd\n"}, want: []string{"F abcd"}},
		{name: "long line", max: 4, writes: []string{"abcdefghij\n"}, want: []string{"P abcd", "P efgh", "F ij"}},
		{name: "long line twice max", max: 4, writes: []string{"abcd", "efgh", "\n"}, want: []string{"P abcd", "F efgh"}},
		{name: "long line byte by byte", max: 2, writes: []string{"a", "b", "c", "\n"}, want: []string{"P ab", "F c"}},
		{name: "crlf with terminal", max: 16, terminal: true, writes: []string{"a\r\nb\r", "\n"}, want: []string{"F a", "F b"}},
		{name: "crlf without terminal kept", max: 16, writes: []string{"a\r\n"}, want: []string{"F a\r"}},
		{name: "only inner cr kept", max: 16, terminal: true, writes: []string{"a\rb\r\n"}, want: []string{"F a\rb"}},
		{name: "partial line at eof", max: 16, writes: []string{"a\nrest"}, want: []string{"F a", "P rest"}},
		{name: "long partial line at eof", max: 3, writes: []string{"abcdefg"}, want: []string{"P abc", "P def", "P g"}},
		{name: "nothing", max: 16, writes: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			w := newLineWriter("stdout", tt.max, tt.terminal, func(line []byte) { got = append(got, string(line)) })
			w.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			w.Flush()
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d lines %q", got, len(tt.want), tt.want)
			}
			for i, line := range got {
				if want := ts + " stdout " + tt.want[i] + "\n"; line != want {
					t.Errorf("line %d: %q, want %q", i, line, want)
				}
			}
		})
	}
}

func TestCRILogReopenAndFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	var diag strings.Builder
	l, err := openCRILog(path, log.New(&diag, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	l.write([]byte("one\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.write([]byte("two\n")) // still the renamed file until the reopen
	if err := l.reopen(); err != nil {
		t.Fatal(err)
	}
	l.write([]byte("three\n"))
	// A write error drops the line and is noted once.
	_ = l.f.Close()
	l.write([]byte("lost\n"))
	l.write([]byte("lost\n"))
	l.close()
	for file, want := range map[string]string{path + ".1": "one\ntwo\n", path: "three\n"} {
		data, _ := os.ReadFile(file)
		if string(data) != want {
			t.Errorf("%s: %q, want %q", file, data, want)
		}
	}
	if n := strings.Count(diag.String(), "dropping output"); n != 1 {
		t.Errorf("diagnostics noted the failure %d times: %q", n, diag.String())
	}
	// "" discards.
	d, err := openCRILog("", log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	d.write([]byte("x\n"))
	if err := d.reopen(); err != nil {
		t.Fatal(err)
	}
}

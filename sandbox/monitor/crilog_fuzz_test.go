package monitor

import (
	"bytes"
	"testing"
	"time"
)

// FuzzLineWriter feeds arbitrary output, cut at an arbitrary point, through a line
// writer and checks the CRI log it makes: every line is "<time> stdout <P|F> <content>",
// no content is longer than the limit or holds a newline, and joining the contents
// (P pieces as they are, F lines with a newline) gives back exactly the output.
func FuzzLineWriter(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint8(3), uint8(1))
	f.Add([]byte("long line without end"), uint8(4), uint8(7))
	f.Add([]byte("\n\n\nx"), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, out []byte, max, cut uint8) {
		limit := int(max%16) + 1
		var lines [][]byte
		w := newLineWriter("stdout", limit, false, func(l []byte) { lines = append(lines, bytes.Clone(l)) })
		w.now = func() time.Time { return time.Unix(0, 0).UTC() }
		at := min(int(cut), len(out))
		w.Write(out[:at])
		w.Write(out[at:])
		w.Flush()

		prefix := []byte(time.Unix(0, 0).UTC().Format(time.RFC3339Nano) + " stdout ")
		var got []byte
		for i, l := range lines {
			rest, ok := bytes.CutPrefix(l, prefix)
			if !ok || len(rest) < 3 || rest[1] != ' ' || l[len(l)-1] != '\n' {
				t.Fatalf("line %d malformed: %q", i, l)
			}
			content := rest[2 : len(rest)-1]
			if len(content) > limit || bytes.IndexByte(content, '\n') >= 0 {
				t.Fatalf("line %d content %q: over %d bytes or holds a newline", i, content, limit)
			}
			got = append(got, content...)
			switch rest[0] {
			case 'F':
				got = append(got, '\n')
			case 'P':
			default:
				t.Fatalf("line %d tag %q", i, rest[0])
			}
		}
		// The flushed partial last line is a P piece: nothing is added.
		if !bytes.Equal(got, out) {
			t.Fatalf("contents %q, want %q", got, out)
		}
	})
}

// FuzzOOMKills checks the oom_kill parser never panics and only reports a count it read.
func FuzzOOMKills(f *testing.F) {
	f.Add([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"))
	f.Add([]byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, ok := oomKills(data)
		if !ok && n != 0 {
			t.Fatalf("oomKills = %d, false", n)
		}
		if ok && !bytes.Contains(data, []byte("oom_kill")) {
			t.Fatalf("oomKills found a count in %q", data)
		}
	})
}

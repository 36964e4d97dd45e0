package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/atomicfile"
)

type meta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

type status struct {
	State string `json:"state"`
	PID   int    `json:"pid,omitempty"`
}

func open(t *testing.T) *Store[meta, status] {
	t.Helper()
	s, err := Open[meta, status](filepath.Join(t.TempDir(), "pods"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := open(t)
	m := meta{Name: "a", Labels: map[string]string{"k": "v"}}
	if err := s.Create("pod1", m); err != nil {
		t.Fatal(err)
	}
	if err := s.Update("pod1", 1, status{State: "ready", PID: 42}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update("pod1", 2, status{State: "stopped"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create("pod2", meta{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	recs, errs := s.Load()
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := []Record[meta, status]{
		{ID: "pod1", Metadata: m, Status: status{State: "stopped"}, Revision: 2},
		{ID: "pod2", Metadata: meta{Name: "b"}, StatusErr: ErrNoStatus},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("Load = %+v\nwant %+v", recs, want)
	}
	// No temporary files are left behind by successful writes.
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "pod1"))
	if len(entries) != 2 {
		t.Errorf("pod1 holds %d files, want metadata and status only", len(entries))
	}
}

func TestCreateTwiceFails(t *testing.T) {
	s := open(t)
	if err := s.Create("p", meta{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create("p", meta{Name: "y"}); err == nil {
		t.Fatal("second Create of the same id succeeded")
	}
	recs, _ := s.Load()
	if len(recs) != 1 || recs[0].Metadata.Name != "x" {
		t.Fatalf("the first record was changed: %+v", recs)
	}
}

func TestDeleteIsIdempotent(t *testing.T) {
	s := open(t)
	if err := s.Create("p", meta{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Delete("p"); err != nil {
			t.Fatal(err)
		}
	}
	if recs, errs := s.Load(); len(recs) != 0 || len(errs) != 0 {
		t.Fatalf("after Delete: %v %v", recs, errs)
	}
	if s.Trash().Empty() {
		t.Fatal("the deleted record is not in the trash")
	}
	if err := s.Trash().Sweep(); err != nil || !s.Trash().Empty() {
		t.Fatalf("sweep: %v", err)
	}
	if entries, _ := os.ReadDir(s.Dir()); len(entries) != 0 {
		t.Fatalf("the store's directory holds %v", entries)
	}
}

func TestInvalidIDs(t *testing.T) {
	s := open(t)
	for _, id := range []string{"", "..", "../x", "a/b", ".hidden", strings.Repeat("a", 129)} {
		if err := s.Create(id, meta{}); err == nil {
			t.Errorf("Create(%q) succeeded", id)
		}
		if err := s.Update(id, 1, status{}); err == nil {
			t.Errorf("Update(%q) succeeded", id)
		}
		if err := s.Delete(id); err == nil {
			t.Errorf("Delete(%q) succeeded", id)
		}
	}
}

func TestLoadBrokenRecords(t *testing.T) {
	s := open(t)
	for _, id := range []string{"good", "badmeta", "badstatus", "future", "nometa"} {
		if err := os.MkdirAll(filepath.Join(s.Dir(), id), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(id, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(s.Dir(), id, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good", metadataFile, `{"schema":1,"metadata":{"name":"g"}}`)
	write("good", statusFile, `{"schema":1,"revision":7,"status":{"state":"ready"}}`)
	write("good", atomicfile.TempPrefix+statusFile+"-123", `{"half`) // an interrupted write
	write("badmeta", metadataFile, `{"schema":1,"metadata":`)
	write("badstatus", metadataFile, `{"schema":1,"metadata":{"name":"b"}}`)
	write("badstatus", statusFile, `not json`)
	write("future", metadataFile, `{"schema":1,"metadata":{"name":"f"}}`)
	write("future", statusFile, `{"schema":99,"revision":1,"status":{"state":"new"}}`)
	// nometa: a directory with nothing in it (a crash inside Create).

	recs, errs := s.Load()
	if len(errs) != 2 {
		t.Errorf("errors = %v, want two (badmeta, nometa)", errs)
	}
	got := map[string]Record[meta, status]{}
	for _, r := range recs {
		got[r.ID] = r
	}
	if r := got["good"]; r.Status.State != "ready" || r.Revision != 7 || r.StatusErr != nil {
		t.Errorf("good = %+v", r)
	}
	if r := got["badstatus"]; r.StatusErr == nil || errors.Is(r.StatusErr, ErrNoStatus) || r.Metadata.Name != "b" {
		t.Errorf("badstatus = %+v", r)
	}
	if r := got["future"]; r.StatusErr == nil || !strings.Contains(r.StatusErr.Error(), "schema 99") {
		t.Errorf("future = %+v", r)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "good", atomicfile.TempPrefix+statusFile+"-123")); !os.IsNotExist(err) {
		t.Errorf("temporary file survived Load: %v", err)
	}
}

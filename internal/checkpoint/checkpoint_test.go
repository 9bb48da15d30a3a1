package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

type rec struct {
	Name  string
	Count int
}

func TestSaveLoadDelete(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "records"))
	if recs, _, err := Load[rec](d); err != nil || len(recs) != 0 {
		t.Fatalf("Load of a missing dir = %v, %v", recs, err)
	}
	for _, tc := range []struct {
		id  string
		rec rec
	}{
		{"a", rec{"first", 1}},
		{"b", rec{"second", 2}},
		{"a", rec{"first", 3}}, // overwrite
	} {
		if err := d.Save(tc.id, tc.rec); err != nil {
			t.Fatal(err)
		}
	}
	// Leftovers of an interrupted write and a torn record.
	os.WriteFile(filepath.Join(string(d), ".c.123.tmp"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(string(d), "torn.json"), []byte("{\"Name\":"), 0o600)

	recs, bad, err := Load[rec](d)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs["a"].Count != 3 || recs["b"].Name != "second" {
		t.Errorf("records = %+v", recs)
	}
	if _, ok := bad["torn"]; !ok || len(bad) != 1 {
		t.Errorf("bad = %v, want the torn record", bad)
	}
	if _, err := os.Stat(filepath.Join(string(d), ".c.123.tmp")); !os.IsNotExist(err) {
		t.Error("temp file of an interrupted write was kept")
	}
	if err := d.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("a"); err != nil {
		t.Errorf("second delete: %v", err)
	}
	recs, _, _ = Load[rec](d)
	if _, ok := recs["a"]; ok {
		t.Error("deleted record still loads")
	}
}

// An unsynced save is a save like any other to the daemon that reads it.
func TestSaveUnsynced(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "records"))
	for _, n := range []int{1, 2} {
		if err := d.SaveUnsynced("a", rec{"a", n}); err != nil {
			t.Fatal(err)
		}
	}
	recs, bad, err := Load[rec](d)
	if err != nil || len(bad) != 0 || len(recs) != 1 || recs["a"].Count != 2 {
		t.Fatalf("Load = %+v, %v, %v; want a's second save", recs, bad, err)
	}
}

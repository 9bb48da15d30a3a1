package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/sandbox"
)

// A pod's infra pid comes back from its record. A record an older Berth
// wrote has none: recovery reads it once from conmon's pid file and saves
// it, so the file is not needed again.
func TestRecoverInfraPid(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recorded  int  // the pid in the record
		oldRecord bool // written before the pid was kept: no infraPid at all
		pidFile   int  // 0: no pid file
		want      int  // the restored pod's pid, and the pid its record holds after
	}{
		{name: "pid from the record", recorded: 4242, pidFile: 77, want: 4242},
		{name: "pid from the record, no pid file", recorded: 4242, want: 4242},
		{name: "old record: pid file read once", oldRecord: true, pidFile: 77, want: 77},
		{name: "old record, no pid file", oldRecord: true, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := unitServer(t)
			sb := sandbox.New("pod-a", "a", hostNetworkPod("a"), "", "crun", t.TempDir(), s.sandboxRecords())
			sb.InfraID, sb.InfraBundle, sb.InfraPid = sb.ID, t.TempDir(), tc.recorded
			// A stopped pod: recovery checks no pins and no conmon for it.
			if err := sb.SetPhase(lifecycle.Created); err != nil {
				t.Fatal(err)
			}
			if tc.oldRecord {
				dropField(t, filepath.Join(string(s.sandboxRecords()), sb.ID+".json"), "infraPid")
			}
			if tc.pidFile != 0 {
				writeInitPid(t, s, sb.ID, tc.pidFile)
			}
			recs, _, err := checkpoint.Load[sandbox.Record](s.sandboxRecords())
			if err != nil {
				t.Fatal(err)
			}
			s.recoverSandbox(context.Background(), recs[sb.ID])
			got, err := s.sandboxes.Get(sb.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.InfraPid != tc.want {
				t.Errorf("restored infra pid %d, want %d", got.InfraPid, tc.want)
			}
			recs, _, _ = checkpoint.Load[sandbox.Record](s.sandboxRecords())
			if r := recs[sb.ID]; r == nil || r.InfraPid != tc.want || r.Phase != lifecycle.Created {
				t.Errorf("record after recovery %+v, want infra pid %d", r, tc.want)
			}
		})
	}
}

// dropField rewrites the JSON record at path without field, as an older
// Berth would have written it.
func dropField(t *testing.T, path, field string) {
	t.Helper()
	editRecord(t, path, func(raw map[string]json.RawMessage) error {
		delete(raw, field)
		return nil
	})
}

// setField rewrites field of the JSON record at path to value, as a crash
// at a point of a call leaves it.
func setField(t *testing.T, path, field string, value any) {
	t.Helper()
	editRecord(t, path, func(raw map[string]json.RawMessage) (err error) {
		raw[field], err = json.Marshal(value)
		return err
	})
}

// editRecord rewrites the JSON record at path as edit changes it.
func editRecord(t *testing.T, path string, edit func(map[string]json.RawMessage) error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if err := edit(raw); err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

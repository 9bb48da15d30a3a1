package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// RemoveContainer returns once the container's record marks the removal;
// the runtime's delete, the rootfs and the record go in the background. A
// kill -9 of the daemon right after the call returned, while that is under
// way, is finished by the next start-up: nothing is left.
func TestBackgroundRemoveFinishedAfterKill(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "bgremove", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "sleeper", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	b.mustCrictl(t, "stop", "--timeout", "0", id)

	// From now on the runtime's delete takes a while: the kill comes
	// while the background removal waits for it.
	shimDir := t.TempDir()
	shim := filepath.Join(shimDir, "slow-delete-crun")
	writeFile(t, shim, "#!/bin/sh\nfor a; do [ \"$a\" = delete ] && sleep 3; done\nexec /usr/bin/crun \"$@\"\n")
	if err := os.Chmod(shim, 0o755); err != nil {
		t.Fatal(err)
	}
	dropIn := filepath.Join(b.Root, "berth.toml.d", "50-slow-delete.toml")
	writeFile(t, dropIn, "[runtime.handlers.crun]\npath = \""+shim+"\"\n")
	b = b.killAndRestart(t, tn.args()...)

	b.mustCrictl(t, "rm", id)
	b.kill(t)
	if recs := b.containerRecords(t); len(recs) != 1 || !strings.HasPrefix(recs[0], id) {
		t.Fatalf("records after the remove returned = %v, want %s's, marked removing", recs, id)
	}
	raw, err := os.ReadFile(filepath.Join(b.Root, "state", "containers", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Phase string }
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Phase != "removing" {
		t.Fatalf("record of the removed container: phase %q (%v), want removing", rec.Phase, err)
	}
	if !slices.Contains(storageContainers(t, b), id) {
		t.Fatal("the rootfs was removed before the kill: the remove did not go on in the background")
	}

	if err := os.Remove(dropIn); err != nil {
		t.Fatal(err)
	}
	b = startBerthIn(t, b.Root, tn.args()...)
	if out := b.mustCrictl(t, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers after the restart: %q", out)
	}
	if recs := b.containerRecords(t); len(recs) != 0 {
		t.Errorf("container records left after the restart: %v", recs)
	}
	if slices.Contains(storageContainers(t, b), id) {
		t.Errorf("the removed container's storage container is left after the restart")
	}
	// The name is free again.
	id2 := b.runContainer(t, podID, podFile, "sleeper", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	b.mustCrictl(t, "rm", "-f", id2)
	b.mustCrictl(t, "rmp", "-f", podID)
	// The killed daemon's delete still sleeps in the shim; it finds
	// nothing to delete when it wakes.
	if !waitFor(func() bool { return len(processesMentioning(t, shimDir)) == 0 }) {
		t.Errorf("shim processes still running: %v", processesMentioning(t, shimDir))
	}
	b.assertNoPodLeftovers(t, tn)
}

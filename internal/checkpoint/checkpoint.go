// Package checkpoint stores one JSON record per object in a directory,
// atomically: a record is either the old one or the new one after a crash,
// never a torn mix, because it is written to a temp file, synced and
// renamed over the old, and the directory is synced after.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dir is a directory of records keyed by object id.
type Dir string

func (d Dir) path(id string) string { return filepath.Join(string(d), id+".json") }

// Save writes v as the record of id, durably: once it returns, the record
// survives a crash of the node.
func (d Dir) Save(id string, v any) error { return d.save(id, v, true) }

// SaveUnsynced writes v as the record of id as atomically as Save, but
// does not wait for it to reach the disk: a crash of the daemon finds the
// old record or the new one, while a crash of the node (power loss, panic)
// may find the old one, or a torn one that Load reports as bad. It is for
// records whose loss on a node crash is harmless, such as the mark of a
// creation that recovery would undo anyway.
func (d Dir) SaveUnsynced(id string, v any) error { return d.save(id, v, false) }

func (d Dir) save(id string, v any, durable bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode checkpoint %s: %w", id, err)
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("create checkpoint dir: %w", err)
	}
	tmp, err := os.CreateTemp(string(d), "."+id+".*.tmp")
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", id, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint %s: %w", id, err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("sync checkpoint %s: %w", id, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", id, err)
	}
	if err := os.Rename(tmp.Name(), d.path(id)); err != nil {
		return fmt.Errorf("commit checkpoint %s: %w", id, err)
	}
	if !durable {
		return nil
	}
	return d.syncDir()
}

func (d Dir) syncDir() error {
	f, err := os.Open(string(d))
	if err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	return nil
}

// Delete removes the record of id; a missing record is fine.
func (d Dir) Delete(id string) error {
	if err := os.Remove(d.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete checkpoint %s: %w", id, err)
	}
	return nil
}

// Load decodes every record into a fresh T, keyed by id. Temp files of
// writes a crash interrupted are removed; a record that does not decode is
// reported in bad, not fatal: one broken file must not keep the node's
// runtime from starting.
func Load[T any](d Dir) (records map[string]*T, bad map[string]error, err error) {
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*T{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read checkpoint dir %s: %w", d, err)
	}
	records, bad = map[string]*T{}, map[string]error{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(string(d), name))
			continue
		}
		id, ok := strings.CutSuffix(name, ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(string(d), name))
		if err != nil {
			bad[id] = err
			continue
		}
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			bad[id] = err
			continue
		}
		records[id] = v
	}
	return records, bad, nil
}

package config

import (
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load returns Default() overlaid with the file at path and then with every
// *.toml file of dropInDir in lexical order. Each file changes only the keys
// it sets, so a drop-in can tune one value or add one runtime handler without
// repeating the rest. A missing path is an error only when pathRequired (the
// operator named it); a missing dropInDir is never one.
func Load(path, dropInDir string, pathRequired bool) (*Config, error) {
	cfg, _, err := load(path, dropInDir, pathRequired)
	return cfg, err
}

// load also returns the files it read, so the daemon can log where its
// settings came from.
func load(path, dropInDir string, pathRequired bool) (*Config, []string, error) {
	cfg := Default()
	var read []string
	if path == "" && pathRequired {
		return nil, nil, errors.New("load config: no config file given")
	}
	if path != "" {
		found, err := decodeFile(cfg, path)
		if err != nil {
			return nil, nil, err
		}
		if !found && pathRequired {
			return nil, nil, fmt.Errorf("load config %s: %w", path, fs.ErrNotExist)
		}
		if found {
			read = append(read, path)
		}
	}
	dropIns, err := dropInFiles(dropInDir)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range dropIns {
		// A drop-in removed since the directory was listed is as if never there.
		found, err := decodeFile(cfg, p)
		if err != nil {
			return nil, nil, err
		}
		if found {
			read = append(read, p)
		}
	}
	return cfg, read, nil
}

// dropInFiles lists dir's *.toml files in lexical order, the order in which
// they override each other; os.ReadDir already sorts by name.
func dropInFiles(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config drop-in directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".toml") {
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	return files, nil
}

// decodeFile overlays the TOML file at path on cfg and reports whether the
// file existed.
func decodeFile(cfg *Config, path string) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read config: %w", err)
	}
	// Decoding into a fresh struct and copying only the keys the file
	// defines keeps "override only what is set" exact: decoding straight
	// into cfg would reset the unset fields of a handler the file mentions.
	var file Config
	md, err := toml.Decode(string(data), &file)
	if err != nil {
		return true, fmt.Errorf("%s: %w", path, err)
	}
	if keys := unknownKeys(md); len(keys) > 0 {
		errs := make([]error, len(keys))
		for i, k := range keys {
			errs[i] = fmt.Errorf("%s: unknown key %q", path, k)
		}
		return true, errors.Join(errs...)
	}
	overlay(&md, nil, reflect.ValueOf(cfg).Elem(), reflect.ValueOf(&file).Elem())
	return true, nil
}

// unknownKeys returns the keys of the file that are not in the schema, only
// the outermost of an unknown table. It walks the schema instead of asking
// MetaData.Undecoded because the decoder also takes field names that match
// only case-insensitively ("Runtime"), which overlay would then drop silently;
// the keys it finds are a superset of Undecoded.
func unknownKeys(md toml.MetaData) []string {
	var unknown []string
	var last toml.Key
	schema := reflect.TypeFor[Config]()
	for _, k := range md.Keys() {
		if last != nil && len(k) > len(last) && slices.Equal(k[:len(last)], last) {
			continue
		}
		if !inSchema(schema, k) {
			unknown = append(unknown, k.String())
			last = k
		}
	}
	return unknown
}

// inSchema reports whether key names a table or value of type t; map
// entries may have any name.
func inSchema(t reflect.Type, key toml.Key) bool {
	for _, part := range key {
		switch {
		case isTable(t):
			f, ok := fieldNamed(t, part)
			if !ok {
				return false
			}
			t = t.Field(f.index).Type
		case t.Kind() == reflect.Map:
			t = t.Elem()
		default:
			return false
		}
	}
	return true
}

// overlay copies into dst the values of src that the file defines. Maps
// merge by entry and, for tables, by field within an entry.
func overlay(md *toml.MetaData, key []string, dst, src reflect.Value) {
	switch {
	case isTable(src.Type()):
		for _, f := range tomlFields(src.Type()) {
			overlay(md, append(slices.Clip(key), f.name), dst.Field(f.index), src.Field(f.index))
		}
	case src.Kind() == reflect.Map:
		if src.Len() == 0 {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(dst.Type()))
		}
		for it := src.MapRange(); it.Next(); {
			v := reflect.New(dst.Type().Elem()).Elem()
			if old := dst.MapIndex(it.Key()); old.IsValid() {
				v.Set(old)
			}
			overlay(md, append(slices.Clip(key), it.Key().String()), v, it.Value())
			dst.SetMapIndex(it.Key(), v)
		}
	default:
		if !md.IsDefined(key...) {
			return
		}
		// An empty list and no list mean the same; keeping one form lets a
		// written config read back equal.
		if src.Kind() == reflect.Slice && src.Len() == 0 {
			dst.SetZero()
			return
		}
		dst.Set(src)
	}
}

// tomlField is a struct field as a config file names it.
type tomlField struct {
	name    string
	comment string
	index   int
}

// tomlFields lists the fields of struct type t the way the decoder sees them.
func tomlFields(t reflect.Type) []tomlField {
	var fields []tomlField
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fields = append(fields, tomlField{name: name, comment: sf.Tag.Get("comment"), index: i})
	}
	return fields
}

func fieldNamed(t reflect.Type, name string) (tomlField, bool) {
	for _, f := range tomlFields(t) {
		if f.name == name {
			return f, true
		}
	}
	return tomlField{}, false
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// isTable reports whether t is written as a TOML table; a struct that
// unmarshals itself from text (Duration) is a plain value.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshaler)
}

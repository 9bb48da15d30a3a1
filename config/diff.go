package config

import (
	"reflect"
	"sort"
	"strings"
)

// Diff lists the dotted keys ("log.level", "runtime.handlers.kata") whose
// values differ between a and b, in order; SIGHUP uses it to say what a
// reload changed and what needs a restart.
func Diff(a, b *Config) []string {
	var out []string
	diffValue("", reflect.ValueOf(*a), reflect.ValueOf(*b), &out)
	sort.Strings(out)
	return out
}

func diffValue(prefix string, a, b reflect.Value, out *[]string) {
	switch a.Kind() {
	case reflect.Struct:
		if a.Type() == reflect.TypeOf(Duration{}) {
			break
		}
		for i := 0; i < a.NumField(); i++ {
			key := strings.Split(a.Type().Field(i).Tag.Get("toml"), ",")[0]
			if key == "" {
				continue
			}
			diffValue(join(prefix, key), a.Field(i), b.Field(i), out)
		}
		return
	case reflect.Map:
		keys := map[string]bool{}
		for _, k := range a.MapKeys() {
			keys[k.String()] = true
		}
		for _, k := range b.MapKeys() {
			keys[k.String()] = true
		}
		for k := range keys {
			av, bv := a.MapIndex(reflect.ValueOf(k)), b.MapIndex(reflect.ValueOf(k))
			if !av.IsValid() || !bv.IsValid() || !reflect.DeepEqual(av.Interface(), bv.Interface()) {
				*out = append(*out, join(prefix, k))
			}
		}
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, prefix)
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

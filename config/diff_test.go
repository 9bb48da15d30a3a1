package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"log level", func(c *Config) { c.Log.Level = "debug" }, []string{"log.level"}},
		{"duration", func(c *Config) { c.Image.PullProgressTimeout = Duration{time.Hour} }, []string{"image.pull_progress_timeout"}},
		{"handler added", func(c *Config) { c.Runtime.Handlers["kata"] = RuntimeHandler{Path: "/k"} }, []string{"runtime.handlers.kata"}},
		{"handler changed and list", func(c *Config) {
			c.Runtime.Handlers["runc"] = RuntimeHandler{Path: "/x"}
			c.Image.PinnedImages = []string{"a"}
		}, []string{"image.pinned_images", "runtime.handlers.runc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := Default(), Default()
			tc.change(b)
			if got := Diff(a, b); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff = %v, want %v", got, tc.want)
			}
		})
	}
}

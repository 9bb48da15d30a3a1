package config

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the README's configuration reference")

// The README's configuration reference is generated from the schema by
// `make docs`; this keeps it from drifting from `berth config`.
func TestREADMEConfigReferenceIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
	i, j := strings.Index(string(readme), begin), strings.Index(string(readme), end)
	if i < 0 || j < i {
		t.Fatal("README lacks the config reference markers")
	}
	var want bytes.Buffer
	if err := Write(&want, Default()); err != nil {
		t.Fatal(err)
	}
	got, block := string(readme)[i+len(begin):j], "```toml\n"+want.String()+"```\n"
	if *updateREADME {
		out := string(readme)[:i+len(begin)] + block + string(readme)[j:]
		if err := os.WriteFile("../README.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != block {
		t.Error("README's configuration reference is out of date: run `make docs`")
	}
}

// Package critest runs cri-tools' critest (conformance specs and
// benchmarks) against Berth, and the benchmarks against containerd for
// comparison, on the test rig: its registry serves every image critest
// pulls, a bridge CNI network of its own connects the pods, and everything
// lives in a temp dir that is removed afterwards. cmd/berth-critest is the
// command `make critest` and `make bench-critest` run; this package holds
// its parts that deserve unit tests: the skip list (SKIPS.md), JUnit and benchmark
// results, the CNI network and containerd's configuration.
package critest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// Skip is one row of SKIPS.md.
type Skip struct {
	// Name is the spec's full text as Ginkgo matches it: container texts
	// and the spec's own, space-separated, without "[It]" or labels.
	Name string
	// When is "always" or a host condition (see Conditions).
	When   string
	Reason string
}

// Conditions are the values SKIPS.md's When column may take besides
// "always": each reports whether the skip applies on this host.
var Conditions = map[string]func() bool{
	"no-apparmor": func() bool { return !AppArmorEnabled() },
}

// AppArmorEnabled reads the kernel's AppArmor switch as critest does.
func AppArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// skipRow matches a table row whose first cell is a backticked spec name:
// "| `name` | when | reason |".
var skipRow = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|\\s*([^|]+?)\\s*\\|\\s*(.*?)\\s*\\|\\s*$")

// ParseSkips reads the skip table of SKIPS.md. Every table row after the
// header must name a spec in backticks, a known When and a reason.
func ParseSkips(r io.Reader) ([]Skip, error) {
	var skips []Skip
	seen := map[string]bool{}
	header := false
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "| Spec ") {
			header = true
			continue
		}
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|--") || strings.HasPrefix(line, "| --") {
			continue
		}
		m := skipRow.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("line %d: want | `spec name` | when | reason |, got %q", n, line)
		}
		s := Skip{Name: m[1], When: m[2], Reason: m[3]}
		if _, ok := Conditions[s.When]; !ok && s.When != "always" {
			return nil, fmt.Errorf("line %d: unknown When %q (want always or one of %v)", n, s.When, conditionNames())
		}
		if s.Reason == "" {
			return nil, fmt.Errorf("line %d: %q has no reason", n, s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("line %d: %q is listed twice", n, s.Name)
		}
		seen[s.Name] = true
		skips = append(skips, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(skips) == 0 && !header {
		// A table with no rows is a list that skips nothing; no table
		// at all is the wrong file.
		return nil, fmt.Errorf("no skip table found")
	}
	return skips, nil
}

// ReadSkips parses the SKIPS.md at path.
func ReadSkips(path string) ([]Skip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	skips, err := ParseSkips(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return skips, nil
}

func conditionNames() []string {
	var names []string
	for n := range Conditions {
		names = append(names, n)
	}
	return names
}

// Active returns the skips that apply on this host.
func Active(skips []Skip) []Skip {
	var out []Skip
	for _, s := range skips {
		if s.When == "always" || Conditions[s.When]() {
			out = append(out, s)
		}
	}
	return out
}

// SkipRegex is the -ginkgo.skip value that skips exactly these specs, ""
// for none.
// Ginkgo matches it against "<suite description> <spec text>", so each name
// is anchored at the end and preceded by a space; names are quoted, since
// they are full of brackets.
func SkipRegex(skips []Skip) string {
	if len(skips) == 0 {
		return "" // skips nothing; " (?:)$" would skip every spec
	}
	var alts []string
	for _, s := range skips {
		alts = append(alts, regexp.QuoteMeta(s.Name))
	}
	return " (?:" + strings.Join(alts, "|") + ")$"
}

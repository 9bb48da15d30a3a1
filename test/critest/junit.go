package critest

import (
	"encoding/xml"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Spec is one spec's outcome in a Ginkgo JUnit report.
type Spec struct {
	// Name is the spec's full text (see Skip.Name).
	Name string
	// Node is the leaf node type: "It", or "BeforeSuite" and the like for
	// suite setup.
	Node string
	// Status is Ginkgo's state: passed, failed, skipped, pending,
	// panicked, interrupted, aborted, timedout.
	Status string
	// Message is the failure or skip message.
	Message string
	// Detail is the failure's description: location and full text.
	Detail   string
	Duration float64 // seconds
}

// Failed reports whether the spec counts as a failure.
func (s Spec) Failed() bool {
	switch s.Status {
	case "passed", "skipped", "pending":
		return false
	}
	return true
}

type junitReport struct {
	Suites []struct {
		Cases []struct {
			Name   string  `xml:"name,attr"`
			Status string  `xml:"status,attr"`
			Time   float64 `xml:"time,attr"`
			Fail   *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// ReadJUnit reads the specs of a Ginkgo JUnit report.
func ReadJUnit(path string) ([]Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r junitReport
	if err := xml.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse JUnit report %s: %w", path, err)
	}
	var specs []Spec
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			node, name := splitCaseName(c.Name)
			sp := Spec{Name: name, Node: node, Status: c.Status, Duration: c.Time}
			switch {
			case c.Fail != nil:
				sp.Message, sp.Detail = c.Fail.Message, c.Fail.Body
			case c.Error != nil:
				sp.Message, sp.Detail = c.Error.Message, c.Error.Body
			case c.Skipped != nil:
				sp.Message = strings.TrimPrefix(strings.TrimPrefix(c.Skipped.Message, "skipped"), " - ")
			}
			if sp.Status == "" { // older Ginkgo: no status attribute
				switch {
				case c.Fail != nil || c.Error != nil:
					sp.Status = "failed"
				case c.Skipped != nil:
					sp.Status = "skipped"
				default:
					sp.Status = "passed"
				}
			}
			specs = append(specs, sp)
		}
	}
	return specs, nil
}

// splitCaseName splits Ginkgo's JUnit name "[It] <full text> [Label, ...]"
// into the node type and the full text. Labels (Ginkgo's, like Serial)
// come last in brackets; a spec's own text may end in brackets too
// ("[Conformance]"), so only known label sets are cut.
func splitCaseName(name string) (node, text string) {
	if strings.HasPrefix(name, "[") {
		if i := strings.Index(name, "] "); i > 0 {
			node, name = name[1:i], name[i+2:]
		} else if strings.HasSuffix(name, "]") && !strings.Contains(name, " ") {
			return name[1 : len(name)-1], ""
		}
	}
	for _, label := range []string{" [Serial]", " [Ordered]", " [Serial, Ordered]", " [Ordered, Serial]"} {
		name = strings.TrimSuffix(name, label)
	}
	return node, name
}

// Summary counts the outcome of the "It" specs.
type Summary struct {
	Passed, Failed, Skipped int
	// SkippedByList are the skipped specs SKIPS.md named; Benchmarks are
	// critest's benchmarks, which it skips itself unless run with
	// -benchmark; SkippedByCritest are the others critest skipped on its
	// own (a feature the runtime does not announce, a host without
	// something).
	SkippedByList, Benchmarks, SkippedByCritest []Spec
	Failures                                    []Spec // failed specs, suite nodes included
	// Interrupted are the specs a cut-short run (^C, a suite timeout)
	// stopped half-way: they neither passed nor failed.
	Interrupted []Spec
}

// Summarize counts specs and sorts failures and skips by name.
func Summarize(specs []Spec, skips []Skip) Summary {
	listed := map[string]bool{}
	for _, s := range skips {
		listed[s.Name] = true
	}
	var sum Summary
	for _, sp := range specs {
		switch {
		case sp.Status == "interrupted":
			sum.Interrupted = append(sum.Interrupted, sp)
		case sp.Failed():
			sum.Failures = append(sum.Failures, sp)
			if sp.Node == "It" {
				sum.Failed++
			}
		case sp.Node != "It":
		case sp.Status == "passed":
			sum.Passed++
		default:
			sum.Skipped++
			switch {
			case listed[sp.Name]:
				sum.SkippedByList = append(sum.SkippedByList, sp)
			case sp.Message == "" && strings.Contains(sp.Name, "benchmark"):
				sum.Benchmarks = append(sum.Benchmarks, sp)
			default:
				sum.SkippedByCritest = append(sum.SkippedByCritest, sp)
			}
		}
	}
	for _, l := range [][]Spec{sum.Failures, sum.Interrupted, sum.SkippedByList, sum.Benchmarks, sum.SkippedByCritest} {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	return sum
}

// StaleSkips returns the skips that name no spec in the report: critest
// renamed or dropped it, and SKIPS.md must follow.
func StaleSkips(skips []Skip, specs []Spec) []Skip {
	names := map[string]bool{}
	for _, sp := range specs {
		names[sp.Name] = true
	}
	var stale []Skip
	for _, s := range skips {
		if !names[s.Name] {
			stale = append(stale, s)
		}
	}
	return stale
}

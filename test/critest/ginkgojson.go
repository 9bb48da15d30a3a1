package critest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// ginkgoReport is the part of a Ginkgo v2 JSON report (--json-report) that
// ReadJSONReport reads: per spec, its container texts and its own, which
// make the full text the focus and skip match, without the labels that a
// JUnit report's test case names carry.
type ginkgoReport struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeType            string
		LeafNodeText            string
		State                   string
		RunTime                 int64 // nanoseconds
		Failure                 *struct {
			Message  string
			Location struct {
				FileName   string
				LineNumber int
			}
		}
	}
}

// ReadJSONReport reads the specs of a Ginkgo JSON report. Suites whose
// spec names end in labels that look like text (the Kubernetes e2e suites
// put "[NodeConformance]" in the text and NodeConformance among the
// labels) are read from it rather than from JUnit, whose names cannot be
// split back into the two.
func ReadJSONReport(path string) ([]Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []ginkgoReport
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("parse Ginkgo JSON report %s: %w", path, err)
	}
	var specs []Spec
	for _, r := range reports {
		for _, sr := range r.SpecReports {
			texts := append(append([]string{}, sr.ContainerHierarchyTexts...), sr.LeafNodeText)
			sp := Spec{
				Name:     strings.TrimSpace(strings.Join(texts, " ")),
				Node:     sr.LeafNodeType,
				Status:   sr.State,
				Duration: float64(sr.RunTime) / 1e9,
			}
			if f := sr.Failure; f != nil {
				sp.Message = f.Message
				sp.Detail = fmt.Sprintf("%s:%d\n%s", f.Location.FileName, f.Location.LineNumber, f.Message)
			}
			specs = append(specs, sp)
		}
	}
	return specs, nil
}

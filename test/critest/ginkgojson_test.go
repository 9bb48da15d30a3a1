package critest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadJSONReport(t *testing.T) {
	report := `[{"SuiteDescription": "E2eNode Suite", "SpecReports": [
  {"ContainerHierarchyTexts": null, "LeafNodeType": "SynchronizedBeforeSuite", "LeafNodeText": "", "State": "passed", "RunTime": 2500000000},
  {"ContainerHierarchyTexts": ["[sig-node] Probing container"], "LeafNodeType": "It",
   "LeafNodeText": "should be restarted [NodeConformance] [Conformance]", "LeafNodeLabels": ["NodeConformance", "Conformance"],
   "State": "failed", "RunTime": 61000000000,
   "Failure": {"Message": "pod never restarted", "Location": {"FileName": "container_probe.go", "LineNumber": 42}}},
  {"ContainerHierarchyTexts": ["[sig-node] Density", "create pods"], "LeafNodeType": "It", "LeafNodeText": "50 pods [Serial]", "State": "skipped", "RunTime": 0}
]}]`
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONReport(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Spec{
		{Node: "SynchronizedBeforeSuite", Status: "passed", Duration: 2.5},
		{Name: "[sig-node] Probing container should be restarted [NodeConformance] [Conformance]", Node: "It", Status: "failed",
			Message: "pod never restarted", Detail: "container_probe.go:42\npod never restarted", Duration: 61},
		{Name: "[sig-node] Density create pods 50 pods [Serial]", Node: "It", Status: "skipped"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("specs:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := ReadJSONReport(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("a missing report read without an error")
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJSONReport(path); err == nil {
		t.Error("a truncated report read without an error")
	}
}

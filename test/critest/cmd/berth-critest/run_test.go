package main

import (
	"reflect"
	"testing"
)

func TestGist(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		want []string
	}{
		{"short", "pod failed\n\nto start\n", []string{"pod failed", "to start"}},
		{"cut at head", "a\nb\nc\nd", []string{"a", "b", "..."}},
		{"dump on a line of its own", "Expected\n{\n  x: 1,\n}", []string{"Expected"}},
		{"cause after a dump", "Verifying pod. Pod: {\n  \"name\": \"p\",\n}\n: [\nExpected success, but got an error:\n    oom_score_adj 0 not -997\n    {\n        s: \"oom_score_adj 0 not -997\",\n    }\n]\n",
			[]string{"Verifying pod. Pod: {", "...", "Expected success, but got an error:", "    oom_score_adj 0 not -997", "        s: \"oom_score_adj 0 not -997\","}},
		{"brace at the very end", "value: {", []string{"value: {"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gist(tc.msg, 2, 3); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("gist = %q, want %q", got, tc.want)
			}
		})
	}
}

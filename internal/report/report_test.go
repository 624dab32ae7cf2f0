package report

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestJUnit(t *testing.T) {
	b, err := JUnit([]Case{
		{Suite: "static", Name: "go vet", Duration: 1500 * time.Millisecond},
		{Suite: "static", Name: "policy", Duration: time.Second, Failure: "charts/x: Deployment a/b: image latest\nmore"},
		{Suite: "deploy: cold", Name: "alt-foundation", Duration: 3 * time.Second},
		{Suite: "deploy: cold", Name: "alt-application", Skipped: "not started"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	if len(got.Suites) != 2 || got.Suites[0].Tests != 2 || got.Suites[0].Failures != 1 || got.Suites[1].Skipped != 1 {
		t.Errorf("suites = %+v", got.Suites)
	}
	f := got.Suites[0].Cases[1].Failure
	if f == nil || f.Message != "charts/x: Deployment a/b: image latest" || !strings.Contains(f.Body, "more") {
		t.Errorf("failure = %+v", f)
	}
	if got.Suites[0].Time != "2.500" {
		t.Errorf("suite time = %s", got.Suites[0].Time)
	}
}

func TestSummary(t *testing.T) {
	s := Summary([]Case{{Suite: "static", Name: "lint", Failure: "a|b\nc"}}, "flowchart LR\n  a --> b\n", "gantt\n  title t\n")
	for _, want := range []string{"### static", "| ❌ | lint | 0.0s | a\\|b |", "```mermaid\nflowchart LR\n  a --> b\n```",
		"### Timeline of the cold deploy\n\n```mermaid\ngantt\n  title t\n```"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

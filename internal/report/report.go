// Package report turns the outcome of a ci run into JUnit XML and a GitHub
// Actions step summary.
package report

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// Case is one check or one layer: a JUnit testcase.
type Case struct {
	Suite    string // "static", "deploy: cold", ...
	Name     string
	Duration time.Duration
	Failure  string // "" when it passed
	Skipped  string // why it did not run, "" when it ran
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string     `xml:"name,attr"`
	ClassName string     `xml:"classname,attr"`
	Time      string     `xml:"time,attr"`
	Failure   *junitText `xml:"failure,omitempty"`
	Skipped   *junitText `xml:"skipped,omitempty"`
}

type junitText struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// JUnit renders the cases grouped by suite, in the order first seen.
func JUnit(cases []Case) ([]byte, error) {
	var out junitSuites
	index := map[string]int{}
	for _, c := range cases {
		i, ok := index[c.Suite]
		if !ok {
			i = len(out.Suites)
			index[c.Suite] = i
			out.Suites = append(out.Suites, junitSuite{Name: c.Suite})
		}
		s := &out.Suites[i]
		jc := junitCase{Name: c.Name, ClassName: c.Suite, Time: seconds(c.Duration)}
		switch {
		case c.Failure != "":
			first, _, _ := strings.Cut(c.Failure, "\n")
			jc.Failure = &junitText{Message: first, Body: c.Failure}
			s.Failures++
		case c.Skipped != "":
			jc.Skipped = &junitText{Message: c.Skipped}
			s.Skipped++
		}
		s.Tests++
		s.Cases = append(s.Cases, jc)
	}
	for i := range out.Suites {
		var total time.Duration
		for _, c := range cases {
			if c.Suite == out.Suites[i].Name {
				total += c.Duration
			}
		}
		out.Suites[i].Time = seconds(total)
	}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// Summary is the Markdown of a GitHub Actions step summary: one table per
// suite and the layer graph.
func Summary(cases []Case, mermaid, gantt string) string {
	var b strings.Builder
	b.WriteString("## mage ci\n\n")
	suite := ""
	for _, c := range cases {
		if c.Suite != suite {
			suite = c.Suite
			fmt.Fprintf(&b, "\n### %s\n\n| | check | time | detail |\n|---|---|---|---|\n", suite)
		}
		mark, detail := "✅", ""
		switch {
		case c.Failure != "":
			mark = "❌"
			detail, _, _ = strings.Cut(c.Failure, "\n")
		case c.Skipped != "":
			mark, detail = "⏭️", c.Skipped
		}
		fmt.Fprintf(&b, "| %s | %s | %.1fs | %s |\n", mark, c.Name, c.Duration.Seconds(), strings.ReplaceAll(detail, "|", "\\|"))
	}
	if mermaid != "" {
		fmt.Fprintf(&b, "\n### Layer graph\n\n```mermaid\n%s```\n", mermaid)
	}
	if gantt != "" {
		fmt.Fprintf(&b, "\n### Timeline of the cold deploy\n\n```mermaid\n%s```\n", gantt)
	}
	return b.String()
}

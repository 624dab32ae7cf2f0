package check

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
)

// lintJob is one `helm lint --strict` of a chart with one list of values
// files, shared by every release and profile that uses that combination.
type lintJob struct {
	chart    string
	values   []string
	args     []string
	releases []string // "release (layer)"
	profiles []string
	err      error
}

var (
	lintLine     = regexp.MustCompile(`(?m)^\[(ERROR|WARNING)\]\s+(.*)$`)
	templateFile = regexp.MustCompile(`template: [^/\s]+/((?:charts/[^/\s]+/)*templates/[^:\s]+):(\d+)`)
)

// Lint runs `helm lint --strict` on every local chart with the values files
// of every release that uses it, in every given profile; identical
// chart+values combinations are linted once (with the namespace and image
// placeholders of the first release that uses them). Remote charts are not
// linted (they cannot be fetched offline). Every ERROR and WARNING line is
// a problem naming the chart file it reports.
func Lint(ctx context.Context, r *run.Runner, s *stack.Stack, helm string, profileNames ...string) error {
	if err := charts.Vendor(s.Repo); err != nil {
		return err
	}
	jobs := map[string]*lintJob{}
	var order []string
	rels, ps := releases(s, profileNames)
	for _, rel := range rels {
		if rel.Remote {
			continue
		}
		key := rel.Chart + "\x00" + strings.Join(rel.ValuesFiles, "\x00")
		j, ok := jobs[key]
		if !ok {
			args := []string{"lint", rel.Chart, "--strict", "--quiet", "--namespace", rel.Namespace}
			for _, f := range rel.ValuesFiles {
				args = append(args, "--values", f)
			}
			for _, kv := range rel.sets {
				args = append(args, "--set", kv)
			}
			j = &lintJob{chart: rel.Chart, values: rel.ValuesFiles, args: args}
			jobs[key] = j
			order = append(order, key)
		}
		name := fmt.Sprintf("%s (%s)", rel.Name, rel.layer.Name)
		if !contains(j.releases, name) {
			j.releases = append(j.releases, name)
		}
		if !contains(j.profiles, rel.profile) {
			j.profiles = append(j.profiles, rel.profile)
		}
	}

	rr := runner(r, s.Repo)
	parallel(len(order), func(i int) {
		j := jobs[order[i]]
		j.err = rr.Run(ctx, helm, j.args...)
	})

	for _, key := range order {
		j := jobs[key]
		if j.err == nil {
			continue
		}
		ps = append(ps, lintProblems(j, fmt.Sprintf("chart %s with values %s (release %s)", j.chart, orNone(j.values), strings.Join(j.releases, ", ")))...)
	}
	return ps.Err()
}

// lintProblems are the ERROR and WARNING lines of a failed lint, each
// naming the chart file (and line) it reports; a chart's local dependency
// (charts/common, vendored into the chart) is named by its own folder.
func lintProblems(j *lintJob, obj string) Problems {
	var ps Problems
	var re *run.Error
	lines := [][]string{}
	if errors.As(j.err, &re) {
		lines = lintLine.FindAllStringSubmatch(re.Output, -1)
	}
	if len(lines) == 0 {
		return Problems{{File: j.chart, Where: obj, Msg: "helm lint failed: " + j.err.Error(), Profiles: j.profiles}}
	}
	for _, m := range lines {
		file := j.chart
		msg := m[2]
		if f, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(f, " ") {
			file = path.Join(j.chart, strings.TrimSuffix(f, "/"))
			msg = rest
		}
		// "template: <chart>/templates/x.yaml:8:22: ...": the file and line.
		if m := templateFile.FindStringSubmatch(msg); m != nil {
			file = path.Join(j.chart, m[1]) + ":" + m[2]
			// A template of the library: charts/<x>/charts/common/... is charts/common/...
			if _, lib, ok := strings.Cut(m[1], "charts/"); ok {
				file = path.Join(charts.Dir, lib) + ":" + m[2]
			}
		}
		ps = append(ps, Problem{File: file, Where: obj, Msg: strings.ToLower(m[1]) + ": " + msg, Profiles: j.profiles})
	}
	return ps
}

func orNone(fs []string) string {
	if len(fs) == 0 {
		return "(chart defaults only)"
	}
	return strings.Join(fs, ", ")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// CIValues are the chart-testing cases of a chart: its ci/*-values.yaml
// files (relative to the repository root, sorted).
func CIValues(repo, chart string) ([]string, error) {
	found, err := filepath.Glob(filepath.Join(repo, chart, "ci", "*-values.yaml"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range found {
		rel, err := filepath.Rel(repo, f)
		if err != nil {
			return nil, err
		}
		out = append(out, filepath.ToSlash(rel))
	}
	sort.Strings(out)
	return out, nil
}

// LintAlone runs `helm lint --strict` on every chart of charts/ alone, as
// someone who picks the chart up would: with no Skaffold file, once per
// chart-testing case (each ci/*-values.yaml of the chart, the convention
// of chart-testing, which helm lint does not read by itself). A chart
// that deploys something and has no case is a problem; a library chart
// (charts/common) is linted with no values. Each ERROR and WARNING line
// is a problem naming the chart file and the case.
func LintAlone(ctx context.Context, r *run.Runner, repo, helm string) error {
	if err := charts.Vendor(repo); err != nil {
		return err
	}
	all, err := charts.List(repo)
	if err != nil {
		return err
	}
	var ps Problems
	var jobs []*lintJob
	for _, chart := range all {
		cases, err := CIValues(repo, chart)
		if err != nil {
			return err
		}
		if len(cases) == 0 {
			if !charts.IsLibrary(repo, chart) {
				ps = append(ps, Problem{File: chart + "/ci", Where: "chart " + chart,
					Msg: "no ci/*-values.yaml: every chart has at least one chart-testing case that lints it alone (helm lint --strict " + chart + " --values " + chart + "/ci/<case>-values.yaml)"})
				continue
			}
			cases = []string{""}
		}
		for _, c := range cases {
			args := []string{"lint", chart, "--strict", "--quiet"}
			var values []string
			if c != "" {
				args = append(args, "--values", c)
				values = []string{c}
			}
			jobs = append(jobs, &lintJob{chart: chart, values: values, args: args})
		}
	}
	rr := runner(r, repo)
	parallel(len(jobs), func(i int) {
		jobs[i].err = rr.Run(ctx, helm, jobs[i].args...)
	})
	for _, j := range jobs {
		if j.err != nil {
			ps = append(ps, lintProblems(j, fmt.Sprintf("chart %s alone with %s", j.chart, orNone(j.values)))...)
		}
	}
	return ps.Err()
}

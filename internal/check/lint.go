package check

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

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
		obj := fmt.Sprintf("chart %s with values %s (release %s)", j.chart, orNone(j.values), strings.Join(j.releases, ", "))
		var re *run.Error
		lines := [][]string{}
		if errors.As(j.err, &re) {
			lines = lintLine.FindAllStringSubmatch(re.Output, -1)
		}
		if len(lines) == 0 {
			ps = append(ps, Problem{File: j.chart, Where: obj, Msg: "helm lint failed: " + j.err.Error(), Profiles: j.profiles})
			continue
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
			}
			ps = append(ps, Problem{File: file, Where: obj, Msg: strings.ToLower(m[1]) + ": " + msg, Profiles: j.profiles})
		}
	}
	return ps.Err()
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

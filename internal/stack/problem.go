package stack

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Problem is one thing wrong, located by file and where in it: a field of
// a Skaffold file (profiles[prod].deploy.helm.releases[alt-backend]) or an
// object a chart renders.
type Problem struct {
	File string // relative to the repository root, e.g. charts/service/templates/deployment.yaml
	// Where is a field path or an object, e.g. "Deployment alt-apps/alt-backend
	// (release alt-backend, layer alt-core-services)"; "" for the whole file.
	Where string
	Msg   string // what is wrong and what is expected
	// Profiles are the profiles the problem shows in (empty: all or none).
	Profiles []string
}

func (p Problem) String() string {
	s := p.File
	if p.Where != "" {
		s += ": " + p.Where
	}
	s += ": " + p.Msg
	if len(p.Profiles) > 0 {
		s += " [" + strings.Join(p.Profiles, ", ") + "]"
	}
	return s
}

// Problems is every problem found; it is an error when not empty.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("%d problem(s):\n%s", len(ps), strings.Join(lines, "\n"))
}

// Err returns ps as an error, merged and sorted, or nil when there is none.
func (ps Problems) Err() error {
	ps = merge(ps)
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// merge folds problems that differ only by profile into one listing every
// profile, and sorts them by file and object.
func merge(ps Problems) Problems {
	type key struct{ file, obj, msg string }
	idx := map[key]int{}
	var out Problems
	for _, p := range ps {
		k := key{p.File, p.Where, p.Msg}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			p.Profiles = slices.Clone(p.Profiles)
			out = append(out, p)
			continue
		}
		for _, pr := range p.Profiles {
			if !slices.Contains(out[i].Profiles, pr) {
				out[i].Profiles = append(out[i].Profiles, pr)
			}
		}
	}
	for i := range out {
		sortProfiles(out[i].Profiles)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		if out[i].Where != out[j].Where {
			return out[i].Where < out[j].Where
		}
		return out[i].Msg < out[j].Msg
	})
	return out
}

// ProfileOrder sorts profiles as they are promoted.
var ProfileOrder = map[string]int{"dev": 0, "staging": 1, "prod": 2}

func sortProfiles(ps []string) {
	sort.SliceStable(ps, func(i, j int) bool {
		oi, ok := ProfileOrder[ps[i]]
		if !ok {
			oi = 99
		}
		oj, ok := ProfileOrder[ps[j]]
		if !ok {
			oj = 99
		}
		if oi != oj {
			return oi < oj
		}
		return ps[i] < ps[j]
	})
}

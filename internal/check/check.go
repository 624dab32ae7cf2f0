// Package check holds the static checks of the platform: everything that
// can be proved from the Skaffold files and the Helm charts without a
// cluster. Render turns every release of every layer into objects, each
// tagged with its layer, release and template file; the checks (Strict,
// Policy, Secrets, References, Hooks, Flows, Contract, KubeScore) work on
// those objects, and Lint and SkaffoldRender run helm lint and skaffold
// render. Every check reports
// every problem it finds, each naming the file and the object.
package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Problem is one thing wrong, located by file and object.
type Problem struct {
	File   string // relative to the repository root, e.g. charts/service/templates/deployment.yaml
	Object string // e.g. "Deployment alt-apps/alt-backend (release alt-backend, layer alt-core-services)"
	Msg    string // what is wrong and what is expected
	// Profiles are the profiles the problem shows in (empty: all or none).
	Profiles []string
}

func (p Problem) String() string {
	s := p.File
	if p.Object != "" {
		s += ": " + p.Object
	}
	s += ": " + p.Msg
	if len(p.Profiles) > 0 {
		s += " [" + strings.Join(p.Profiles, ", ") + "]"
	}
	return s
}

// Problems is every problem a check found; it is an error when not empty.
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
		k := key{p.File, p.Object, p.Msg}
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
		if out[i].Object != out[j].Object {
			return out[i].Object < out[j].Object
		}
		return out[i].Msg < out[j].Msg
	})
	return out
}

var profileOrder = map[string]int{"dev": 0, "staging": 1, "prod": 2}

func sortProfiles(ps []string) {
	sort.SliceStable(ps, func(i, j int) bool {
		oi, ok := profileOrder[ps[i]]
		if !ok {
			oi = 99
		}
		oj, ok := profileOrder[ps[j]]
		if !ok {
			oj = 99
		}
		if oi != oj {
			return oi < oj
		}
		return ps[i] < ps[j]
	})
}

// Note is something a check did not check, and why. Notes are never
// failures, but they are always reported: nothing passes silently.
type Note struct {
	Check string // e.g. strict
	What  string
	Why   string
}

func (n Note) String() string { return fmt.Sprintf("%s: not checked: %s: %s", n.Check, n.What, n.Why) }

// dedupeNotes drops repeated notes, keeping the first order.
func dedupeNotes(ns []Note) []Note {
	seen := map[Note]bool{}
	var out []Note
	for _, n := range ns {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

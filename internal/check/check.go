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

	"github.com/alt-platform/orchestration/internal/stack"
)

// Problem is one thing wrong, located by file and object (its Where).
type Problem = stack.Problem

// Problems is every problem a check found; it is an error when not empty.
type Problems = stack.Problems

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

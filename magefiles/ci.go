//go:build mage

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/alt-platform/orchestration/internal/ui"
)

// CI is the gate every change passes: static checks, then every test,
// including the integration tests that deploy to a simulated cluster.
// Each check prints ✓/✗ and its time; all run even when one fails.
func CI(ctx context.Context) error {
	r := newRunner()
	type check struct {
		name string
		run  func() error
	}
	checks := []check{
		{"go vet ./...", func() error { return r.Run(ctx, "go", "vet", "./...") }},
		{"stack: Skaffold files and the Mage graph", func() error { _, err := eng(); return err }},
		{"go test ./... (integration tests on a sim cluster included)", func() error {
			// Streamed: the test names and the closing lines belong in the log.
			rv := *r
			rv.Verbose = true
			return rv.Run(ctx, "go", "test", "-count=1", "-timeout=60m", "./...")
		}},
	}
	var failed []error
	var rows [][]string
	for _, c := range checks {
		s := ui.Start("%s", c.name)
		err := s.End(c.run())
		state := "ok"
		if err != nil {
			state = "FAILED"
			failed = append(failed, fmt.Errorf("%s: %w", c.name, err))
		}
		rows = append(rows, []string{c.name, state, ui.Round(s.Elapsed()).String()})
	}
	ui.Table([]string{"CHECK", "RESULT", "TIME"}, rows)
	return errors.Join(failed...)
}

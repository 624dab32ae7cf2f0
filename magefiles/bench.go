//go:build mage

package main

import (
	"context"
	"fmt"

	"github.com/alt-platform/orchestration/internal/bench"
)

// Bench times `all` against Skaffold's own `skaffold deploy -p dev` of the
// root config on fresh sim clusters (cold, then nothing changed), and ci's
// static checks against three `skaffold render`s, and prints the table for
// BENCHMARKS.md. Reads ALT_TOOLS_DIR.
func Bench(ctx context.Context) error {
	repo, self, tc, err := repoSelfTools()
	if err != nil {
		return err
	}
	static, err := bench.Static(ctx, repo, tc)
	if err != nil {
		return err
	}
	results, err := bench.Run(ctx, repo, self, tc)
	if err != nil {
		return err
	}
	results = append(results, static)
	fmt.Print(bench.Markdown(results))
	return nil
}

//go:build mage

package main

import (
	"context"
	"os"

	"github.com/alt-platform/orchestration/internal/ci"
)

// CI is the gate every change passes: static checks (vet, unit tests, the
// stack, helm lint, strict render, policy, quotas, references, hooks, object
// owners, git-ignored inputs, network flows both ways, Alt's contract,
// skaffold render of every profile, kube-score), a deploy to a fresh sim
// cluster from empty and again unchanged, the kind stage where a Docker
// daemon answers (kind:create, dev with stand-in sources on real kubelets,
// every nginx-external route, dev again unchanged, a crashing stand-in's
// diagnosis, kind:reset, the cluster deleted pass or fail), then every
// test. Writes
// .cache/ci/junit.xml and, on GitHub Actions, the step summary
// (GITHUB_STEP_SUMMARY). Reads ALT_TOOLS_DIR, and ALT_KIND_NAME and
// ALT_KIND_REGISTRY_PORT for the kind stage's cluster (default alt-ci).
func CI(ctx context.Context) error {
	repo, self, tc, err := repoSelfTools()
	if err != nil {
		return err
	}
	return ci.Run(ctx, ci.Options{Repo: repo, Self: self, Tools: tc, Runner: newRunner(),
		Summary: os.Getenv("GITHUB_STEP_SUMMARY")})
}

package engine

import (
	"context"
	"os"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/sim"
)

// simCluster is the simulated cluster of internal/sim, started on demand.
type simCluster struct{ c *sim.Cluster }

func newSimCluster(e *Engine) Cluster { return &simCluster{c: sim.New(e.Repo, e.Tools, e.Runner)} }

func (s *simCluster) Name() string { return config.ClusterSim }

func (s *simCluster) Ensure(ctx context.Context) (string, error) { return s.c.Up(ctx) }

func (s *simCluster) Kubeconfig() string {
	if _, err := os.Stat(s.c.Kubeconfig()); err != nil {
		return ""
	}
	return s.c.Kubeconfig()
}

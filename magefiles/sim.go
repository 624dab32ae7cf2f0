//go:build mage

package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/sim"
	"github.com/alt-platform/orchestration/internal/ui"
	"github.com/magefile/mage/mg"
)

// Sim is the simulated cluster (no Docker): a real control plane on
// loopback whose nodes are simulated by kwok, kept in .cache/sim.
type Sim mg.Namespace

// Up starts the sim cluster (or reuses it) and prints its kubeconfig path last. Reads ALT_TOOLS_DIR.
func (Sim) Up(ctx context.Context) error {
	c, err := simCluster()
	if err != nil {
		return err
	}
	kubeconfig, err := c.Up(ctx)
	if err != nil {
		return err
	}
	fmt.Println(kubeconfig)
	return nil
}

// Down stops the sim cluster's processes and keeps its state. Reads ALT_TOOLS_DIR.
func (Sim) Down(ctx context.Context) error {
	c, err := simCluster()
	if err != nil {
		return err
	}
	return c.Down(ctx, false)
}

// Reset deletes the sim cluster and starts an empty one; prints its kubeconfig path last. Reads ALT_TOOLS_DIR.
func (Sim) Reset(ctx context.Context) error {
	c, err := simCluster()
	if err != nil {
		return err
	}
	if err := c.Down(ctx, true); err != nil {
		return err
	}
	return Sim{}.Up(ctx)
}

// Status reports each sim component's health and fails naming those that are down. Reads ALT_TOOLS_DIR.
func (Sim) Status(ctx context.Context) error {
	c, err := simCluster()
	if err != nil {
		return err
	}
	comps, err := c.Status(ctx)
	var rows [][]string
	for _, cp := range comps {
		state, pid := "down", "-"
		if cp.Healthy {
			state = "healthy"
		} else if cp.Running {
			state = "unhealthy"
		}
		if cp.PID > 0 {
			pid = strconv.Itoa(cp.PID)
		}
		rows = append(rows, []string{cp.Name, state, pid, cp.Detail})
	}
	if len(rows) > 0 {
		ui.Table([]string{"COMPONENT", "STATE", "PID", "DETAIL"}, rows)
	}
	return err
}

func simCluster() (*sim.Cluster, error) {
	repo, err := engine.FindRepo()
	if err != nil {
		return nil, err
	}
	cache, err := toolsCache()
	if err != nil {
		return nil, err
	}
	return sim.New(repo, cache, newRunner()), nil
}

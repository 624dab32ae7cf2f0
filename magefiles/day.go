//go:build mage

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/ui"
)

// The day-to-day targets, after `dev`: status, down, logs, open, watch.
// They read the same settings as the layer targets (see config:show).

// Status shows the current cluster on one screen: per layer whether its inputs still match its last verified deploy (and what changed), each release's revision and state, pods ready/total with restarts and the worst reason, the URLs to open. Exits non-zero when anything is unhealthy or not deployed. -json: the same, machine-readable on stdout.
func Status(ctx context.Context, json *bool) error {
	e, err := eng()
	if err != nil {
		return err
	}
	st, err := e.Status(ctx)
	if err != nil {
		return err
	}
	if json != nil && *json {
		if err := printJSON(st); err != nil {
			return err
		}
	} else {
		printStatus(st)
	}
	if !st.Healthy {
		return fmt.Errorf("unhealthy: %d problem(s): %s", len(st.Problems), st.Problems[0])
	}
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStatus(st *engine.PlatformStatus) {
	ui.Info("%s cluster, profile %s (KUBECONFIG=%s)", st.Cluster, st.Profile, st.Kubeconfig)
	var rows [][]string
	for _, l := range st.Layers {
		for i, r := range l.Releases {
			layer, state, inputs := "", "", ""
			if i == 0 {
				layer, state, inputs = l.Layer, l.State, l.Inputs
			}
			rev := "-"
			if r.Revision > 0 {
				rev = strconv.Itoa(r.Revision)
			}
			rows = append(rows, []string{layer, state, inputs, r.Namespace + "/" + r.Name, rev, r.State,
				fmt.Sprintf("%d/%d", r.Ready, r.Pods), strconv.Itoa(r.Restarts)})
		}
	}
	ui.Table([]string{"LAYER", "STATE", "INPUTS", "RELEASE", "REV", "HELM", "READY", "RESTARTS"}, rows)
	for _, p := range st.Problems {
		ui.Warn("%s", p)
	}
	for _, u := range st.URLs {
		ui.Info("%s", u)
	}
}

// Down uninstalls layers in reverse graph order (what needs a layer goes first) and clears their records; claims (PVCs) and generated dev secrets are kept. -layer=NAME: that layer and every layer that needs it (NAME as in `mage -l`, e.g. operations, or 08). -purge=CLUSTER: also delete their claims and kept secrets (and, with 01, the namespaces); CLUSTER must name the cluster (sim, kind-<ALT_KIND_NAME>, or the kube context). Holds the deploy lock. A cluster that is neither kind nor sim (staging, prod) is refused unless ALT_FORCE_CONTEXT names its context.
func Down(ctx context.Context, layer, purge *string) error {
	if err := alone("down", 0, "-layer=NAME (`mage down -layer=operations`)"); err != nil {
		return err
	}
	e, err := eng()
	if err != nil {
		return err
	}
	return e.Down(ctx, engine.DownOptions{Layer: deref(layer), Purge: deref(purge)})
}

// Logs follows every pod of a service (a release name: alt-backend, kratos, ...), each line prefixed by pod and container. -since=10m: newer lines only; -previous: the previous container of each pod; -grep=REGEXP: matching lines only. On the sim cluster no container runs: it says so and shows the pods' events instead.
func Logs(ctx context.Context, service string, since *string, previous *bool, grep *string) error {
	if err := alone("logs", 1, "one service"); err != nil {
		return err
	}
	e, err := eng()
	if err != nil {
		return err
	}
	ss, err := e.FindServices(service)
	if err != nil {
		return err
	}
	if len(ss) != 1 {
		return fmt.Errorf("logs follows one service; %q names %d", service, len(ss))
	}
	return e.Logs(ctx, ss[0], engine.LogOptions{Since: deref(since), Previous: previous != nil && *previous, Grep: deref(grep)})
}

// Open prints the URLs of the platform's entry (nginx-external) and Grafana, reachable from this machine: kind maps the entry to localhost:80 (ALT_KIND_HTTP_PORT) and Grafana is port-forwarded; on a context both are port-forwarded; the port-forwards last until Ctrl-C. On sim nothing answers (no container runs) and it says so.
func Open(ctx context.Context) error {
	e, err := eng()
	if err != nil {
		return err
	}
	return e.Open(ctx)
}

// Watch is the dev loop of the named services (release names, comma-separated: `mage watch alt-backend,auth-service`). On sim it follows their chart and values files and their layer's Skaffold file and, on each save, redeploys only the layer the file belongs to (verified and recorded like any run), holding the deploy lock until Ctrl-C, which leaves the platform as it is. On kind it runs skaffold dev of their images and releases alone (BuildKit, pushed to the cluster's registry, cleanup off, port-forwards printed once) and marks their layers so that the next dev redeploys them. An unknown name gets the list of known services.
func Watch(ctx context.Context, services string) error {
	if err := alone("watch", 1, "several services separated by commas (`mage watch alt-backend,auth-service`)"); err != nil {
		return err
	}
	e, err := eng()
	if err != nil {
		return err
	}
	ss, err := e.FindServices(services)
	if err != nil {
		return err
	}
	return e.Watch(ctx, ss)
}

// alone refuses a command line on which target is followed by more than
// its positional arguments and its -flags: mage would run the next word as
// a target after this one (`mage down operations` would take everything
// down, then deploy operations again).
func alone(target string, positional int, how string) error {
	args := engine.CommandTargets(os.Args[1:])
	for i, a := range args {
		if !strings.EqualFold(a, target) {
			continue
		}
		rest := args[i+1:]
		if len(rest) < positional {
			return nil // mage reports the missing argument
		}
		for _, r := range rest[positional:] {
			if !strings.HasPrefix(r, "-") {
				return fmt.Errorf("%s: %q after it would run as another target once %s returns; give %s", target, r, target, how)
			}
		}
		return nil
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Rollback returns one layer to its previous verified deploy: each of its Helm releases back to the revision that deploy verified (the same rendered objects and image references), then verified as any deploy and recorded. Refused, naming the recorded deploys, when there is none before the current one. -layer=NAME (as for down: operations, alt-operations, 08-operations or 08); without it, it lists what each layer could return to. Holds the deploy lock. The next deploy of your files deploys them again.
func Rollback(ctx context.Context, layer *string) error {
	if err := alone("rollback", 0, "-layer=NAME (`mage rollback -layer=operations`)"); err != nil {
		return err
	}
	e, err := eng()
	if err != nil {
		return err
	}
	if deref(layer) == "" {
		return e.RollbackChoices(ctx)
	}
	return e.Rollback(ctx, deref(layer))
}

// Promote deploys to prod what staging verified: every layer, as `all` does, with the image references of the release file a staging run wrote (ALT_RELEASE, default releases/staging.json), each pinned by digest; nothing is built. Needs ALT_PROFILE=prod; a file that is missing, not staging's, lacking an image or holding one not pinned by digest is refused before any cluster is touched.
func Promote(ctx context.Context) error {
	cfg, err := config.FromEnvironment()
	if err != nil {
		return err
	}
	if cfg.Profile != "prod" {
		return fmt.Errorf("promote deploys to prod: ALT_PROFILE is %q, set ALT_PROFILE=prod (staging builds its images: `mage all` with ALT_PROFILE=staging)", cfg.Profile)
	}
	return All(ctx)
}

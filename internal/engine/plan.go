package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
)

// PlanItem is what a run would do to one layer, and why.
type PlanItem struct {
	Layer  string   `json:"layer"`
	Dir    string   `json:"dir"`
	Needs  []string `json:"needs"`
	Action string   `json:"action"` // deploy or skip
	Reason string   `json:"reason"`
	Digest string   `json:"digest"`
}

// Plan says, for every layer in requires order (a topological order of the
// graph), whether a run would deploy or skip it and why. It changes
// nothing: it starts no cluster, builds nothing and takes no lock.
func (e *Engine) Plan(ctx context.Context) ([]PlanItem, error) {
	e.images = e.expectedImages(Record{})
	e.decideCertManager(ctx, false)
	note := ""
	if e.Cluster.Name() != config.ClusterSim {
		note = " (images are built at deploy time; their tags are not predicted)"
	}
	var why string
	if kc := e.Cluster.Kubeconfig(); kc == "" {
		why = "the cluster does not exist yet"
	} else {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		k, err := Connect(cctx, kc, "")
		if err != nil {
			why = fmt.Sprintf("the cluster is not reachable (%v)", firstLine(err.Error()))
		} else {
			e.connect(k)
		}
	}
	recs := map[string]Record{}
	if e.state != nil {
		var err error
		if recs, err = e.state.Records(ctx); err != nil {
			return nil, err
		}
	}
	var items []PlanItem
	for _, l := range e.Stack.Layers {
		v, err := l.View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
		if err != nil {
			return nil, err
		}
		it := PlanItem{Layer: l.Name, Dir: l.Dir, Needs: e.Graph.Needs[l.Name], Action: "deploy"}
		if e.state == nil {
			in, err := layerInputs(e.Repo, v, e.images, e.Env, e.toolVersions())
			if err != nil {
				return nil, err
			}
			it.Reason, it.Digest = why, in.Digest()
		} else {
			e.images = e.expectedImages(recs[l.Name])
			d, err := e.decide(ctx, v)
			if err != nil {
				return nil, err
			}
			it.Digest = d.Inputs.Digest()
			if !d.Deploy {
				it.Action, it.Reason = "skip", "unchanged and healthy"
			} else {
				it.Reason = d.Reason
			}
		}
		it.Reason += note
		items = append(items, it)
	}
	return items, nil
}

// recordedImages are the image tags of a layer's last verified deploy.
func recordedImages(rec Record) map[string]string {
	images := map[string]string{}
	for k, v := range rec.Inputs {
		if img, ok := strings.CutPrefix(k, "image:"); ok {
			images[img] = v
		}
	}
	return images
}

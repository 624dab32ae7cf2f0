package engine

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PlatformStatus is one screen about the current cluster: each layer's
// inputs against its last verified deploy, each release's revision and
// state, its pods and the worst reason found, and where to open it.
type PlatformStatus struct {
	Cluster    string        `json:"cluster"`
	Kubeconfig string        `json:"kubeconfig"`
	Profile    string        `json:"profile"`
	Healthy    bool          `json:"healthy"`
	Problems   []string      `json:"problems"`
	Layers     []LayerStatus `json:"layers"`
	URLs       []string      `json:"urls"`
}

// LayerStatus is one layer.
type LayerStatus struct {
	Layer string `json:"layer"`
	Dir   string `json:"dir"`
	// State: up (recorded and healthy), unhealthy, not deployed.
	State string `json:"state"`
	// Inputs: "match" (the last verified deploy's digest), "changed: ..."
	// (the next dev redeploys it: its inputs changed, or watch redeployed
	// some of its services), or "no verified deploy recorded".
	Inputs     string          `json:"inputs"`
	Digest     string          `json:"digest,omitempty"`
	RecordedAt string          `json:"recordedAt,omitempty"`
	Releases   []ReleaseStatus `json:"releases"`
}

// ReleaseStatus is one Helm release of a layer.
type ReleaseStatus struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Revision  int    `json:"revision"`
	State     string `json:"state"` // deployed, failed, pending-*, not installed
	Ready     int    `json:"ready"`
	Pods      int    `json:"pods"`
	Restarts  int    `json:"restarts"`
	// Worst is the worst reason found: a pod's, else an object's; "" when
	// everything is ready.
	Worst string `json:"worst,omitempty"`
}

// Status reads the platform's state from the cluster; it changes nothing.
// Healthy is false when a layer is not deployed or anything of it is not
// ready; Problems names each, one line each.
func (e *Engine) Status(ctx context.Context) (*PlatformStatus, error) {
	k, err := e.Attach(ctx)
	if err != nil {
		return nil, err
	}
	st := &PlatformStatus{Cluster: e.Cluster.Name(), Kubeconfig: e.kubeconfig, Profile: e.Cfg.Profile, Problems: []string{}}
	recs, err := e.state.Records(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range e.Stack.Layers {
		v, err := l.View(e.Cfg.Profile, func(key string) string { return e.Env[key] })
		if err != nil {
			return nil, err
		}
		ls := LayerStatus{Layer: l.Name, Dir: l.Dir}
		rec, recorded := recs[l.Name]
		in, err := layerInputs(e.Repo, v, e.expectedImages(rec), e.Env, e.toolVersions())
		if err != nil {
			return nil, err
		}
		ls.Digest = in.Digest()
		switch {
		case !recorded:
			ls.Inputs = "no verified deploy recorded"
		case rec.Stale != "":
			ls.Inputs, ls.RecordedAt = "changed: "+rec.Stale, rec.Time
		case rec.Digest == in.Digest():
			ls.Inputs, ls.RecordedAt = "match", rec.Time
		default:
			ls.Inputs, ls.RecordedAt = "changed: "+shortList(in.Changed(rec.Inputs), 4), rec.Time
		}
		installed := 0
		var problems []string
		for _, r := range v.Releases {
			rs, err := e.releaseStatus(ctx, k, r.Name, r.Namespace)
			if err != nil {
				return nil, err
			}
			if rs.State != "not installed" {
				installed++
			}
			if rs.Worst != "" {
				problems = append(problems, fmt.Sprintf("%s: release %s/%s: %s", l.Name, r.Namespace, r.Name, rs.Worst))
			}
			ls.Releases = append(ls.Releases, rs)
		}
		switch {
		case installed == 0 && !recorded:
			// Its releases' "not installed" is the same news, said once.
			ls.State, problems = "not deployed", []string{l.Name + ": not deployed"}
		case len(problems) > 0:
			ls.State = "unhealthy"
		case !recorded:
			ls.State = "unhealthy"
			problems = append(problems, l.Name+": its releases are installed but no verified deploy is recorded (a deploy failed or was interrupted)")
		default:
			ls.State = "up"
		}
		st.Problems = append(st.Problems, problems...)
		st.Layers = append(st.Layers, ls)
	}
	st.Healthy = len(st.Problems) == 0
	st.URLs = e.Where()
	return st, nil
}

// releaseStatus reads one release: its latest revision, its objects'
// health and its pods (label app.kubernetes.io/instance=<release>).
func (e *Engine) releaseStatus(ctx context.Context, k *Kube, name, namespace string) (ReleaseStatus, error) {
	rs := ReleaseStatus{Name: name, Namespace: namespace}
	hr, err := e.rel.Release(ctx, name, namespace)
	if err != nil {
		return rs, err
	}
	if hr == nil {
		rs.State, rs.Worst = "not installed", "not installed"
		return rs, nil
	}
	rs.Revision, rs.State = hr.Revision, hr.Status
	bad, err := e.rel.Check(ctx, hr.Objects)
	if err != nil {
		return rs, err
	}
	pods, err := k.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + name})
	if err != nil {
		return rs, err
	}
	podWorst := ""
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodSucceeded || p.DeletionTimestamp != nil || (p.Status.Phase == corev1.PodFailed && k.retriedToCompletion(ctx, p)) {
			// Done, on its way out (a rollout's old pod), or a Job's
			// failed attempt that a later one made good.
			continue
		}
		rs.Pods++
		for _, cs := range p.Status.ContainerStatuses {
			rs.Restarts += int(cs.RestartCount)
		}
		if why := podProblem(p); why == "" {
			rs.Ready++
		} else if podWorst == "" {
			podWorst = fmt.Sprintf("pod %s: %s", p.Name, why)
		}
	}
	var worst []string
	if hr.Status != "deployed" {
		worst = append(worst, fmt.Sprintf("revision %d is %s", hr.Revision, hr.Status))
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 1 {
			more = fmt.Sprintf(" (and %d more objects not ready)", len(bad)-1)
		}
		worst = append(worst, bad[0].String()+more)
	}
	if podWorst != "" {
		worst = append(worst, podWorst)
	}
	rs.Worst = strings.Join(worst, "; ")
	return rs, nil
}

// retriedToCompletion reports whether a pod belongs to a Job that has
// completed: its failure was one attempt of the Job's, retried until one
// succeeded.
func (k *Kube) retriedToCompletion(ctx context.Context, p *corev1.Pod) bool {
	owner := metav1.GetControllerOf(p)
	if owner == nil || owner.Kind != "Job" {
		return false
	}
	job, err := k.Client.BatchV1().Jobs(p.Namespace).Get(ctx, owner.Name, metav1.GetOptions{})
	if err != nil || job.UID != owner.UID {
		return false
	}
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

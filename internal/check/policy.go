package check

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// NoProbesAnnotation on a pod says why its long-running containers have no
// probes (a process that listens on nothing); the contract check holds it
// to docs/alt-contract.yaml.
const NoProbesAnnotation = "alt-platform.io/no-probes"

// Policy checks every workload (Pod, Deployment, StatefulSet, DaemonSet,
// ReplicaSet, Job, CronJob) of the objects, per profile:
//
//   - every image has a tag or digest, and the tag is not "latest";
//   - no imagePullPolicy Never;
//   - every container and init container requests and limits cpu and memory;
//   - the main containers of long-running workloads (Deployment,
//     StatefulSet, DaemonSet, ReplicaSet) have liveness and readiness probes,
//     unless the pod annotation NoProbesAnnotation says why not;
//   - the pod satisfies the Pod Security level its namespace enforces
//     (pod-security.kubernetes.io/enforce on the rendered Namespace), as
//     the admission plugin of the pinned Kubernetes minor decides it.
//
// A workload in a namespace that no rendered Namespace object declares is
// a note (its level is unknown); References reports the namespace itself.
func Policy(objs []*Object) ([]Note, error) {
	var ps Problems
	var notes []Note
	order, groups := byProfile(objs)
	for _, p := range order {
		nss := namespaces(groups[p])
		for _, w := range workloads(groups[p]) {
			ps = append(ps, workloadPolicy(w)...)
			labels, ok := nss[w.obj.Namespace]
			if !ok {
				notes = append(notes, Note{Check: "policy", What: "Pod Security of " + w.obj.Desc(),
					Why: fmt.Sprintf("namespace %s is not among the rendered Namespace objects, so its enforced level is unknown", w.obj.Namespace)})
				continue
			}
			level := labels["pod-security.kubernetes.io/enforce"]
			if level == "" {
				continue // privileged: nothing to check
			}
			violations, err := podSecurity(w, level)
			if err != nil {
				ps = append(ps, w.obj.problem("namespace %s: label pod-security.kubernetes.io/enforce=%q: %v", w.obj.Namespace, level, err))
				continue
			}
			for _, v := range violations {
				ps = append(ps, w.obj.problem("namespace %s enforces Pod Security %q: %s", w.obj.Namespace, level, v))
			}
		}
	}
	return dedupeNotes(notes), ps.Err()
}

func workloadPolicy(w workload) Problems {
	var ps Problems
	add := func(format string, a ...any) { ps = append(ps, w.obj.problem(format, a...)) }
	for _, c := range w.containers() {
		img := c.c.Image
		tag, digest := imageRef(img)
		switch {
		case img == "":
			add("%s.image: empty", c.path)
		case tag == "" && digest == "":
			add("%s.image: %q has no tag; pin a version (third-party images are pinned in the chart's values.yaml)", c.path, img)
		case tag == "latest":
			add("%s.image: %q uses the tag latest; pin a version", c.path, img)
		}
		if c.c.ImagePullPolicy == corev1.PullNever {
			add("%s.imagePullPolicy: Never; images are pulled (IfNotPresent), one tag policy for every cluster", c.path)
		}
		var missing []string
		for _, kind := range []string{"requests", "limits"} {
			rl := c.c.Resources.Requests
			if kind == "limits" {
				rl = c.c.Resources.Limits
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := rl[r]; !ok || q.IsZero() {
					missing = append(missing, kind+"."+string(r))
				}
			}
		}
		if len(missing) > 0 {
			add("%s.resources: no %s", c.path, strings.Join(missing, ", "))
		}
		if w.longRunning && !c.init && w.annotations[NoProbesAnnotation] == "" {
			if c.c.LivenessProbe == nil {
				add("%s: no livenessProbe (a long-running %s container needs liveness and readiness probes)", c.path, w.obj.Kind)
			}
			if c.c.ReadinessProbe == nil {
				add("%s: no readinessProbe (a long-running %s container needs liveness and readiness probes, or the pod annotation %s saying why it has none)", c.path, w.obj.Kind, NoProbesAnnotation)
			}
		}
	}
	return ps
}

// imageRef returns the tag and digest of an image reference.
func imageRef(img string) (tag, digest string) {
	if i := strings.Index(img, "@"); i >= 0 {
		img, digest = img[:i], img[i+1:]
	}
	last := img[strings.LastIndex(img, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		tag = last[i+1:]
	}
	return tag, digest
}

// podSecurity returns the violations of a Pod Security level (the value of
// a namespace's pod-security.kubernetes.io/enforce label) as the admission
// plugin of the pinned Kubernetes minor evaluates them: its own checks, from
// k8s.io/pod-security-admission, at KubernetesMinor.
func podSecurity(w workload, label string) ([]string, error) {
	level, err := api.ParseLevel(label)
	if err != nil {
		return nil, err
	}
	version, err := api.ParseVersion(KubernetesMinor)
	if err != nil {
		return nil, err
	}
	ev, err := evaluator()
	if err != nil {
		return nil, err
	}
	meta := &metav1.ObjectMeta{Annotations: w.annotations, Labels: w.labels}
	var v []string
	for _, r := range ev.EvaluatePod(api.LevelVersion{Level: level, Version: version}, meta, w.spec) {
		if !r.Allowed {
			v = append(v, fmt.Sprintf("%s: %s", r.ForbiddenReason, r.ForbiddenDetail))
		}
	}
	return v, nil
}

var evaluator = sync.OnceValues(func() (policy.Evaluator, error) {
	return policy.NewEvaluator(policy.DefaultChecks())
})

package check

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// workload is one rendered object that makes pods, with its pod template.
type workload struct {
	obj         *Object
	spec        *corev1.PodSpec
	labels      map[string]string // pod template labels
	annotations map[string]string // pod template annotations
	specPath    string            // where the pod spec is, e.g. spec.template.spec
	// longRunning: a Deployment, StatefulSet, DaemonSet or ReplicaSet,
	// whose main containers need liveness and readiness probes.
	longRunning bool
	// claimTemplates are the names of a StatefulSet's volumeClaimTemplates.
	claimTemplates []string
}

// workloads finds every pod template among the objects.
func workloads(objs []*Object) []workload {
	var ws []workload
	for _, o := range objs {
		switch t := typed(o).(type) {
		case *corev1.Pod:
			ws = append(ws, workload{obj: o, spec: &t.Spec, labels: t.Labels, annotations: t.Annotations, specPath: "spec"})
		case *appsv1.Deployment:
			ws = append(ws, workload{obj: o, spec: &t.Spec.Template.Spec, labels: t.Spec.Template.Labels, annotations: t.Spec.Template.Annotations, specPath: "spec.template.spec", longRunning: true})
		case *appsv1.StatefulSet:
			w := workload{obj: o, spec: &t.Spec.Template.Spec, labels: t.Spec.Template.Labels, annotations: t.Spec.Template.Annotations, specPath: "spec.template.spec", longRunning: true}
			for _, c := range t.Spec.VolumeClaimTemplates {
				w.claimTemplates = append(w.claimTemplates, c.Name)
			}
			ws = append(ws, w)
		case *appsv1.DaemonSet:
			ws = append(ws, workload{obj: o, spec: &t.Spec.Template.Spec, labels: t.Spec.Template.Labels, annotations: t.Spec.Template.Annotations, specPath: "spec.template.spec", longRunning: true})
		case *appsv1.ReplicaSet:
			ws = append(ws, workload{obj: o, spec: &t.Spec.Template.Spec, labels: t.Spec.Template.Labels, annotations: t.Spec.Template.Annotations, specPath: "spec.template.spec", longRunning: true})
		case *batchv1.Job:
			ws = append(ws, workload{obj: o, spec: &t.Spec.Template.Spec, labels: t.Spec.Template.Labels, annotations: t.Spec.Template.Annotations, specPath: "spec.template.spec"})
		case *batchv1.CronJob:
			ws = append(ws, workload{obj: o, spec: &t.Spec.JobTemplate.Spec.Template.Spec, labels: t.Spec.JobTemplate.Spec.Template.Labels, annotations: t.Spec.JobTemplate.Spec.Template.Annotations, specPath: "spec.jobTemplate.spec.template.spec"})
		}
	}
	return ws
}

// container is one container of a pod spec with its field path.
type container struct {
	c    *corev1.Container
	path string // e.g. spec.template.spec.containers[app]
	init bool
}

func (w workload) containers() []container {
	var cs []container
	for i := range w.spec.InitContainers {
		c := &w.spec.InitContainers[i]
		cs = append(cs, container{c: c, path: w.specPath + ".initContainers[" + c.Name + "]", init: true})
	}
	for i := range w.spec.Containers {
		c := &w.spec.Containers[i]
		cs = append(cs, container{c: c, path: w.specPath + ".containers[" + c.Name + "]"})
	}
	return cs
}

// namespaces reads the Namespace objects: name → labels.
func namespaces(objs []*Object) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, o := range objs {
		if ns, ok := typed(o).(*corev1.Namespace); ok {
			labels := map[string]string{"kubernetes.io/metadata.name": ns.Name}
			for k, v := range ns.Labels {
				labels[k] = v
			}
			m[ns.Name] = labels
		}
	}
	return m
}

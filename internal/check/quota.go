package check

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Quotas holds, per profile, every namespace's ResourceQuota against what
// the rendered objects of that namespace need at once: every workload's
// pods (replicas of Deployments and StatefulSets, one pod of each Job,
// CronJob and DaemonSet), plus the extra pods of a rolling update of
// every Deployment (maxSurge), each pod counted as the scheduler counts
// it (the largest init container or the sum of the containers), a
// container without a value taking the namespace's LimitRange default;
// and the claims (PersistentVolumeClaims and StatefulSets' claim
// templates). A namespace whose quota is smaller fails here, naming the
// resource, what is needed and by what: the API server would refuse the
// pods past the quota and the layer would never become ready.
func Quotas(objs []*Object) error {
	var ps Problems
	order, groups := byProfile(objs)
	for _, p := range order {
		quotas := map[string]*Object{}
		defaults := map[string]*corev1.LimitRangeItem{}
		for _, o := range groups[p] {
			switch t := typed(o).(type) {
			case *corev1.ResourceQuota:
				quotas[o.Namespace] = o
			case *corev1.LimitRange:
				for i := range t.Spec.Limits {
					if t.Spec.Limits[i].Type == corev1.LimitTypeContainer {
						defaults[o.Namespace] = &t.Spec.Limits[i]
					}
				}
			}
		}
		need := map[string]*usage{}
		at := func(ns string) *usage {
			if need[ns] == nil {
				need[ns] = &usage{total: corev1.ResourceList{}}
			}
			return need[ns]
		}
		for _, w := range workloads(groups[p]) {
			if quotas[w.obj.Namespace] == nil {
				continue
			}
			u := at(w.obj.Namespace)
			pods, surge := podCount(w)
			per := podResources(w.spec, defaults[w.obj.Namespace])
			per[corev1.ResourcePods] = resource.MustParse("1")
			u.add(per, pods+surge, fmt.Sprintf("%s ×%d", w.obj.ID(), pods+surge))
			for _, claim := range claimTemplates(w) {
				u.add(claimResources(claim), pods, fmt.Sprintf("%s claim %s ×%d", w.obj.ID(), claim.Name, pods))
			}
		}
		for _, o := range groups[p] {
			if c, ok := typed(o).(*corev1.PersistentVolumeClaim); ok && quotas[o.Namespace] != nil {
				at(o.Namespace).add(claimResources(*c), 1, o.ID())
			}
		}
		for _, ns := range slices.Sorted(maps.Keys(need)) {
			u := need[ns]
			q := typed(quotas[ns]).(*corev1.ResourceQuota)
			for _, name := range slices.Sorted(maps.Keys(q.Spec.Hard)) {
				hard, have := q.Spec.Hard[name], u.total[name]
				if have.Cmp(hard) > 0 {
					ps = append(ps, quotas[ns].problem("namespace %s: %s: the rendered objects need %s at once, the quota allows %s (biggest: %s)",
						ns, name, have.String(), hard.String(), u.biggest(name, 3)))
				}
			}
		}
	}
	return ps.Err()
}

// usage adds up what a namespace's objects need, keeping who needs what.
type usage struct {
	total corev1.ResourceList
	parts []usagePart
}

type usagePart struct {
	who  string
	list corev1.ResourceList
}

func (u *usage) add(per corev1.ResourceList, n int, who string) {
	if n <= 0 {
		return
	}
	part := corev1.ResourceList{}
	for name, q := range per {
		q = q.DeepCopy()
		q.Mul(int64(n))
		part[name] = q
		sum := u.total[name]
		sum.Add(q)
		u.total[name] = sum
	}
	u.parts = append(u.parts, usagePart{who, part})
}

// biggest names the n largest users of a resource.
func (u *usage) biggest(name corev1.ResourceName, n int) string {
	parts := append([]usagePart(nil), u.parts...)
	sort.SliceStable(parts, func(i, j int) bool {
		a, b := parts[i].list[name], parts[j].list[name]
		return a.Cmp(b) > 0
	})
	var out []string
	for _, p := range parts {
		if q, ok := p.list[name]; ok && !q.IsZero() && len(out) < n {
			out = append(out, fmt.Sprintf("%s %s", p.who, q.String()))
		}
	}
	return strings.Join(out, ", ")
}

// podCount is how many pods a workload keeps, and how many more a rolling
// update adds for a while (a Deployment's maxSurge, 25% by default).
func podCount(w workload) (pods, surge int) {
	switch t := typed(w.obj).(type) {
	case *appsv1.Deployment:
		pods = 1
		if t.Spec.Replicas != nil {
			pods = int(*t.Spec.Replicas)
		}
		if t.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
			return pods, 0
		}
		max := intstr.FromString("25%")
		if ru := t.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
			max = *ru.MaxSurge
		}
		s, err := intstr.GetScaledValueFromIntOrPercent(&max, pods, true)
		if err == nil {
			surge = s
		}
		return pods, surge
	case *appsv1.StatefulSet:
		if t.Spec.Replicas != nil {
			return int(*t.Spec.Replicas), 0
		}
	}
	return 1, 0
}

// podResources is what one pod of the spec asks for, as the quota counts
// it: per resource, the larger of the largest init container and the sum
// of the containers; an absent value is the LimitRange's default.
func podResources(spec *corev1.PodSpec, def *corev1.LimitRangeItem) corev1.ResourceList {
	of := func(c corev1.Container) corev1.ResourceList {
		l := corev1.ResourceList{}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if !hasLim && def != nil {
				lim, hasLim = def.Default[r]
			}
			if !hasReq {
				// A missing request is the container's own limit, else the
				// LimitRange's default request.
				if explicit, ok := c.Resources.Limits[r]; ok {
					req, hasReq = explicit, true
				} else if def != nil {
					req, hasReq = def.DefaultRequest[r]
				}
			}
			if hasReq {
				l[corev1.ResourceName("requests."+string(r))] = req
			}
			if hasLim {
				l[corev1.ResourceName("limits."+string(r))] = lim
			}
		}
		return l
	}
	sum := corev1.ResourceList{}
	for _, c := range spec.Containers {
		for name, q := range of(c) {
			s := sum[name]
			s.Add(q)
			sum[name] = s
		}
	}
	for _, c := range spec.InitContainers {
		for name, q := range of(c) {
			if s := sum[name]; q.Cmp(s) > 0 {
				sum[name] = q
			}
		}
	}
	return sum
}

func claimTemplates(w workload) []corev1.PersistentVolumeClaim {
	if s, ok := typed(w.obj).(*appsv1.StatefulSet); ok {
		return s.Spec.VolumeClaimTemplates
	}
	return nil
}

func claimResources(c corev1.PersistentVolumeClaim) corev1.ResourceList {
	l := corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: resource.MustParse("1")}
	if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		l[corev1.ResourceRequestsStorage] = q
	}
	return l
}

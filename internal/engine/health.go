package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/polling/collector"
	"sigs.k8s.io/cli-utils/pkg/kstatus/polling/event"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/cli-utils/pkg/kstatus/watcher"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// HelmRelease is the latest revision Helm recorded of one release.
type HelmRelease struct {
	Name, Namespace string
	Revision        int
	Status          string // deployed, failed, pending-install, pending-upgrade, ...
	Objects         []object.ObjMetadata
	// Record is the storage Secret of that revision, as read: its name,
	// UID and resourceVersion.
	Record, UID, ResourceVersion string
}

// Release reads the latest revision of a Helm release from its storage
// Secrets (sh.helm.release.v1.<name>.v<n>) and lists the objects its
// manifest holds. It returns nil when the release does not exist.
func (k *Kube) Release(ctx context.Context, name, namespace string) (*HelmRelease, error) {
	secrets, err := k.Client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		return nil, err
	}
	var latest *corev1.Secret
	best := -1
	for i := range secrets.Items {
		v, _ := strconv.Atoi(secrets.Items[i].Labels["version"])
		if v > best {
			best, latest = v, &secrets.Items[i]
		}
	}
	if latest == nil {
		return nil, nil
	}
	rel := &HelmRelease{Name: name, Namespace: namespace, Revision: best, Status: latest.Labels["status"],
		Record: latest.Name, UID: string(latest.UID), ResourceVersion: latest.ResourceVersion}
	manifest, err := decodeHelmRelease(latest.Data["release"])
	if err != nil {
		return nil, fmt.Errorf("release %s/%s revision %d: %w", namespace, name, best, err)
	}
	rel.Objects, err = k.objects(manifest, namespace)
	return rel, err
}

// decodeHelmRelease returns the manifest of Helm's stored release record:
// base64 of gzip of JSON.
func decodeHelmRelease(data []byte) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil {
		return "", err
	}
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return "", err
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return "", err
		}
	}
	var rec struct {
		Manifest string `json:"manifest"`
	}
	err = json.Unmarshal(raw, &rec)
	return rec.Manifest, err
}

// objects lists the objects of a rendered manifest, namespacing the
// namespaced ones by the release namespace when they name none.
func (k *Kube) objects(manifest, namespace string) ([]object.ObjMetadata, error) {
	var ids []object.ObjMetadata
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if u.Object == nil || u.GetKind() == "" {
			continue
		}
		gvk := u.GroupVersionKind()
		id := object.ObjMetadata{Name: u.GetName(), Namespace: u.GetNamespace(), GroupKind: gvk.GroupKind()}
		if m, err := k.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil && m.Scope.Name() == meta.RESTScopeNameNamespace {
			if id.Namespace == "" {
				id.Namespace = namespace
			}
		} else if err == nil {
			id.Namespace = ""
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Unhealthy is one object that is not as it should be, and why.
type Unhealthy struct {
	ID      object.ObjMetadata
	Status  string
	Message string
}

func (u Unhealthy) String() string {
	return fmt.Sprintf("%s %s: %s (%s)", u.ID.GroupKind.Kind, nsName(u.ID), u.Status, u.Message)
}

func nsName(id object.ObjMetadata) string {
	if id.Namespace == "" {
		return id.Name
	}
	return id.Namespace + "/" + id.Name
}

// Check reads every object once and returns those that are missing or not
// Current by kstatus (a Job must also have completed).
// The reads run side by side, a few at a time.
func (k *Kube) Check(ctx context.Context, ids []object.ObjMetadata) ([]Unhealthy, error) {
	verdicts := make([]*Unhealthy, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u, err := k.get(ctx, id)
			switch {
			case apierrors.IsNotFound(err):
				verdicts[i] = &Unhealthy{ID: id, Status: "NotFound", Message: "the object is missing from the cluster"}
			case err != nil:
				errs[i] = err
			default:
				if st, msg := k.objectStatus(ctx, u); st != status.CurrentStatus {
					verdicts[i] = &Unhealthy{ID: id, Status: st.String(), Message: msg}
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var bad []Unhealthy
	for _, v := range verdicts {
		if v != nil {
			bad = append(bad, *v)
		}
	}
	return bad, nil
}

func (k *Kube) get(ctx context.Context, id object.ObjMetadata) (*unstructured.Unstructured, error) {
	m, err := k.Mapper.RESTMapping(id.GroupKind)
	if err != nil {
		return nil, err
	}
	var ri interface {
		Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
	} = k.Dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = k.Dynamic.Resource(m.Resource).Namespace(id.Namespace)
	}
	return ri.Get(ctx, id.Name, metav1.GetOptions{})
}

// objectStatus is kstatus' verdict, made stricter for Jobs: kstatus calls a
// started Job Current, a layer is verified only when it has completed.
func objectStatus(u *unstructured.Unstructured) (status.Status, string) {
	res, err := status.Compute(u)
	if err != nil {
		return status.UnknownStatus, err.Error()
	}
	if res.Status == status.CurrentStatus && u.GetKind() == "Job" && u.GroupVersionKind().Group == "batch" && !jobComplete(u) {
		return status.InProgressStatus, "Job has not completed: " + res.Message
	}
	return res.Status, res.Message
}

// objectStatus is objectStatus, and a Pending claim whose StorageClass
// binds it only when its first pod is scheduled (WaitForFirstConsumer) is
// Current: a CronJob's claim binds at its first run, not at the deploy.
func (k *Kube) objectStatus(ctx context.Context, u *unstructured.Unstructured) (status.Status, string) {
	st, msg := objectStatus(u)
	if st != status.InProgressStatus || u.GetKind() != "PersistentVolumeClaim" || u.GroupVersionKind().Group != "" {
		return st, msg
	}
	if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); phase != string(corev1.ClaimPending) {
		return st, msg
	}
	class, _, _ := unstructured.NestedString(u.Object, "spec", "storageClassName")
	if k.bindsOnFirstConsumer(ctx, class) {
		return status.CurrentStatus, "Pending until its first pod is scheduled (StorageClass binds WaitForFirstConsumer)"
	}
	return st, msg
}

// bindsOnFirstConsumer reports whether the StorageClass (the cluster's
// default one for "") binds its claims WaitForFirstConsumer. A class's
// binding mode cannot change, so each answer found is kept: verification
// asks again on every watch event.
func (k *Kube) bindsOnFirstConsumer(ctx context.Context, class string) bool {
	if v, ok := k.firstConsumer.Load(class); ok {
		return v.(bool)
	}
	classes, err := k.Client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, sc := range classes.Items {
		isDefault := sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true"
		if sc.Name == class || (class == "" && isDefault) {
			waits := sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
			k.firstConsumer.Store(class, waits)
			return waits
		}
	}
	return false
}

func jobComplete(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Complete" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// Wait watches the objects with kstatus until every one is Current (Jobs
// complete), one has Failed, or ctx ends. It returns the objects that are
// not Current at the end.
func (k *Kube) Wait(ctx context.Context, ids []object.ObjMetadata) ([]Unhealthy, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	set := object.ObjMetadataSet(ids)
	w := watcher.NewDefaultStatusWatcher(k.Dynamic, k.Mapper)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := w.Watch(wctx, set, watcher.Options{})
	coll := collector.NewResourceStatusCollector(set)
	done := coll.ListenWithObserver(events, collector.ObserverFunc(func(c *collector.ResourceStatusCollector, _ event.Event) {
		for _, rs := range c.ResourceStatuses {
			if rs == nil {
				return
			}
			st := rs.Status
			if rs.Resource != nil {
				st, _ = k.objectStatus(wctx, rs.Resource)
			}
			if st == status.FailedStatus {
				cancel()
				return
			}
			if st != status.CurrentStatus {
				return
			}
		}
		cancel()
	}))
	<-done
	// The final verdict comes from a fresh read, not from the watch cache.
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	return k.Check(rctx, ids)
}

// Diagnose explains why objects are unhealthy, on one screen: each object's
// status and conditions, for workloads the reasons of their pods that are
// not ready and the pods' last events, and the latest warning events.
func (k *Kube) Diagnose(ctx context.Context, bad []Unhealthy) string {
	var b strings.Builder
	for i, u := range bad {
		if i == 8 {
			fmt.Fprintf(&b, "   ... and %d more not ready\n", len(bad)-i)
			break
		}
		fmt.Fprintf(&b, "   %s\n", u)
		obj, err := k.get(ctx, u.ID)
		if err != nil {
			continue
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["status"] != "True" || m["type"] == "Failed" || m["type"] == "ReplicaFailure" {
				fmt.Fprintf(&b, "     condition %v=%v %v %v\n", m["type"], m["status"], m["reason"], oneLine(fmt.Sprint(m["message"])))
			}
		}
		for _, p := range k.podsOf(ctx, obj) {
			fmt.Fprintf(&b, "     %s\n", p)
		}
		for _, e := range k.events(ctx, u.ID.Namespace, u.ID.Name, 3) {
			fmt.Fprintf(&b, "     event: %s\n", e)
		}
	}
	return b.String()
}

// podsOf describes the pods of a workload that are not ready (at most 3).
func (k *Kube) podsOf(ctx context.Context, obj *unstructured.Unstructured) []string {
	sel, found, _ := unstructured.NestedMap(obj.Object, "spec", "selector", "matchLabels")
	if obj.GetKind() == "Job" {
		sel, found = map[string]any{"job-name": obj.GetName()}, true
	}
	if !found || len(sel) == 0 {
		return nil
	}
	var parts []string
	for k, v := range sel {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	pods, err := k.Client.CoreV1().Pods(obj.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: strings.Join(parts, ",")})
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pods.Items {
		if len(out) == 3 {
			break
		}
		if why := podProblem(&p); why != "" {
			out = append(out, fmt.Sprintf("pod %s: %s", p.Name, why))
			for _, e := range k.events(ctx, p.Namespace, p.Name, 2) {
				out = append(out, "  event: "+e)
			}
		}
	}
	return out
}

// podProblem says why a pod is not ready, or "" when it is.
func podProblem(p *corev1.Pod) string {
	if p.Status.Phase == corev1.PodSucceeded {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	var why []string
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			why = append(why, fmt.Sprintf("not scheduled: %s %s", c.Reason, oneLine(c.Message)))
		}
	}
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil:
			why = append(why, fmt.Sprintf("container %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, oneLine(cs.State.Waiting.Message)))
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			why = append(why, fmt.Sprintf("container %s terminated: %s exit %d %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, oneLine(cs.State.Terminated.Message)))
		case !cs.Ready:
			why = append(why, fmt.Sprintf("container %s not ready (restarts %d)", cs.Name, cs.RestartCount))
		}
		// A container that keeps crashing is often Running or waiting in
		// CrashLoopBackOff when looked at: its last run says why.
		if t := cs.LastTerminationState.Terminated; t != nil && !cs.Ready {
			why = append(why, fmt.Sprintf("container %s last state: terminated %s exit %d (restarts %d)%s", cs.Name, t.Reason, t.ExitCode, cs.RestartCount, lastWords(t.Message)))
		}
	}
	if len(why) == 0 {
		why = append(why, fmt.Sprintf("phase %s, not ready", p.Status.Phase))
	}
	return strings.Join(why, "; ")
}

func lastWords(m string) string {
	if m = oneLine(m); m != "" {
		return ": " + m
	}
	return ""
}

// events returns the latest events of an object, newest last.
func (k *Kube) events(ctx context.Context, namespace, name string, n int) []string {
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	evs, err := k.Client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil
	}
	sort.Slice(evs.Items, func(i, j int) bool { return eventTime(evs.Items[i]).Before(eventTime(evs.Items[j])) })
	items := evs.Items
	if len(items) > n {
		// A probe failure is why a pod is not ready; later BackOff or
		// Started events would hide it: keep the latest one.
		var probe *corev1.Event
		for i := range items[:len(items)-n] {
			if items[i].Reason == "Unhealthy" {
				probe = &items[i]
			}
		}
		items = items[len(items)-n:]
		if probe != nil && !slices.ContainsFunc(items, func(e corev1.Event) bool { return e.Reason == "Unhealthy" }) {
			items = append([]corev1.Event{*probe}, items...)
		}
	}
	var out []string
	for _, e := range items {
		out = append(out, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, oneLine(e.Message)))
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// RecoverPending removes the record of a release revision that an
// interrupted run left pending (pending-install, pending-upgrade,
// pending-rollback): Helm refuses every later operation on such a release.
// Without the record Helm sees the revision before it (or no release) and
// the next upgrade adopts the objects the interrupted run created, since
// they carry this release's ownership annotations. Call it only while
// holding the deploy lock. It returns what it did, or "".
func (k *Kube) RecoverPending(ctx context.Context, name, namespace string) (string, error) {
	hr, err := k.Release(ctx, name, namespace)
	if err != nil || hr == nil || !strings.HasPrefix(hr.Status, "pending-") {
		return "", err
	}
	return k.removeRecord(ctx, hr)
}

// removeRecord deletes the storage Secret of hr only if it is still the
// one that was inspected (same UID and resourceVersion): a record that
// Helm rewrote meanwhile, or a new one of the same name, is left alone.
func (k *Kube) removeRecord(ctx context.Context, hr *HelmRelease) (string, error) {
	uid, rv := types.UID(hr.UID), hr.ResourceVersion
	err := k.Client.CoreV1().Secrets(hr.Namespace).Delete(ctx, hr.Record, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		return "", fmt.Errorf("release %s/%s was %s at revision %d, but its record %s changed while this run inspected it (another Helm client is at work?); nothing was removed, run again",
			hr.Namespace, hr.Name, hr.Status, hr.Revision, hr.Record)
	case err != nil:
		return "", fmt.Errorf("release %s/%s is %s and its record %s could not be removed: %w", hr.Namespace, hr.Name, hr.Status, hr.Record, err)
	}
	return fmt.Sprintf("release %s/%s was left %s at revision %d by an interrupted run; removed that record (Secret %s) so this run can deploy it",
		hr.Namespace, hr.Name, hr.Status, hr.Revision, hr.Record), nil
}

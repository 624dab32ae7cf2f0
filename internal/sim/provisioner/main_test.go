package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeAPI serves fixed lists and records writes.
type fakeAPI struct {
	mu      sync.Mutex
	lists   map[string]string
	created []map[string]any
	deleted []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		body, ok := f.lists[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	case http.MethodPost:
		var obj map[string]any
		json.NewDecoder(r.Body).Decode(&obj)
		f.created = append(f.created, obj)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "{}")
	case http.MethodDelete:
		f.deleted = append(f.deleted, r.URL.Path)
		io.WriteString(w, "{}")
	}
}

func TestReconcile(t *testing.T) {
	const name = "sim.test/hostpath"
	api := &fakeAPI{lists: map[string]string{
		"/apis/storage.k8s.io/v1/storageclasses": `{"items":[
		  {"metadata":{"name":"standard"},"provisioner":"sim.test/hostpath","volumeBindingMode":"WaitForFirstConsumer"},
		  {"metadata":{"name":"now"},"provisioner":"sim.test/hostpath","reclaimPolicy":"Retain","volumeBindingMode":"Immediate"},
		  {"metadata":{"name":"foreign"},"provisioner":"example.com/other"}]}`,
		"/api/v1/persistentvolumeclaims": `{"items":[
		  {"metadata":{"name":"data-0","namespace":"db","uid":"u1","annotations":{"volume.kubernetes.io/selected-node":"sim-node-2"}},
		   "spec":{"storageClassName":"standard","accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}},"status":{"phase":"Pending"}},
		  {"metadata":{"name":"waiting","namespace":"db","uid":"u2"},
		   "spec":{"storageClassName":"standard","resources":{"requests":{"storage":"1Gi"}}},"status":{"phase":"Pending"}},
		  {"metadata":{"name":"immediate","namespace":"db","uid":"u3"},
		   "spec":{"storageClassName":"now","volumeMode":"Filesystem","resources":{"requests":{"storage":"2Gi"}}},"status":{"phase":"Pending"}},
		  {"metadata":{"name":"foreign","namespace":"db","uid":"u4"},
		   "spec":{"storageClassName":"foreign","resources":{"requests":{"storage":"1Gi"}}},"status":{"phase":"Pending"}},
		  {"metadata":{"name":"bound","namespace":"db","uid":"u5"},
		   "spec":{"storageClassName":"standard","volumeName":"pvc-u5"},"status":{"phase":"Bound"}}]}`,
		"/api/v1/persistentvolumes": `{"items":[
		  {"metadata":{"name":"pvc-old","annotations":{"pv.kubernetes.io/provisioned-by":"sim.test/hostpath"}},
		   "spec":{"persistentVolumeReclaimPolicy":"Delete"},"status":{"phase":"Released"}},
		  {"metadata":{"name":"pvc-kept","annotations":{"pv.kubernetes.io/provisioned-by":"sim.test/hostpath"}},
		   "spec":{"persistentVolumeReclaimPolicy":"Retain"},"status":{"phase":"Released"}},
		  {"metadata":{"name":"theirs","annotations":{"pv.kubernetes.io/provisioned-by":"example.com/other"}},
		   "spec":{"persistentVolumeReclaimPolicy":"Delete"},"status":{"phase":"Released"}}]}`,
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	p := &provisioner{c: &client{base: srv.URL, http: srv.Client()}, name: name}
	if err := p.reconcileOnce(context.Background()); err != nil {
		t.Fatal(err)
	}

	if len(api.created) != 2 {
		t.Fatalf("created %d volumes, want 2 (the claim with a selected node and the Immediate one): %v", len(api.created), api.created)
	}
	js, _ := json.Marshal(api.created[0])
	for _, w := range []string{`"name":"pvc-u1"`, `"storageClassName":"standard"`, `"storage":"1Gi"`,
		`"claimRef":{"apiVersion":"v1","kind":"PersistentVolumeClaim","name":"data-0","namespace":"db","uid":"u1"}`,
		`"values":["sim-node-2"]`, `"persistentVolumeReclaimPolicy":"Delete"`, `"pv.kubernetes.io/provisioned-by":"sim.test/hostpath"`} {
		if !strings.Contains(string(js), w) {
			t.Errorf("volume for data-0 lacks %s:\n%s", w, js)
		}
	}
	js, _ = json.Marshal(api.created[1])
	for _, w := range []string{`"name":"pvc-u3"`, `"persistentVolumeReclaimPolicy":"Retain"`, `"volumeMode":"Filesystem"`} {
		if !strings.Contains(string(js), w) {
			t.Errorf("volume for immediate lacks %s:\n%s", w, js)
		}
	}
	if strings.Contains(string(js), "nodeAffinity") {
		t.Errorf("an Immediate volume without a selected node needs no node affinity:\n%s", js)
	}
	if len(api.deleted) != 1 || api.deleted[0] != "/api/v1/persistentvolumes/pvc-old" {
		t.Fatalf("deleted %v, want only pvc-old", api.deleted)
	}
}

func TestHealthz(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	p := &provisioner{c: &client{base: srv.URL, http: srv.Client()}}
	rec := httptest.NewRecorder()
	p.healthz(rec, nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("before the first reconcile: %d, want 503", rec.Code)
	}
	p.reconcile(context.Background()) // the API server is gone: fails
	rec = httptest.NewRecorder()
	p.healthz(rec, nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("after a failed reconcile: %d, want 503", rec.Code)
	}
}

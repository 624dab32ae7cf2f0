package check

import (
	"strings"
	"testing"
)

// What a namespace's objects need at once (replicas, a rolling update's
// surge, init containers, LimitRange defaults, claims) is held against its
// ResourceQuota; each resource past it is named with its biggest users.
func TestQuotas(t *testing.T) {
	const quota = `# Source: foundation/templates/quota.yaml
apiVersion: v1
kind: ResourceQuota
metadata: {name: alt-quota, namespace: alt-app}
spec:
  hard: {requests.cpu: "4", limits.cpu: "4", limits.memory: 2Gi, pods: "10", requests.storage: 10Gi, persistentvolumeclaims: "3"}
---
# Source: foundation/templates/limitrange.yaml
apiVersion: v1
kind: LimitRange
metadata: {name: alt-limits, namespace: alt-app}
spec:
  limits:
    - type: Container
      default: {cpu: 500m, memory: 512Mi}
      defaultRequest: {cpu: 50m, memory: 64Mi}
`
	const app = `# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: alt-app}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      initContainers:
        - name: init
          image: busybox:1.37
          resources: {limits: {cpu: "1", memory: 128Mi}}
      containers:
        - name: app
          image: app:sim
          resources: {requests: {cpu: 200m}, limits: {cpu: 700m, memory: 128Mi}}
        - name: sidecar
          image: sidecar:sim
---
# Source: app/templates/statefulset.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: alt-app}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          image: db:sim
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: CLAIM}}}
`
	run := func(replicas, claim string) error {
		m := strings.NewReplacer("REPLICAS", replicas, "CLAIM", claim).Replace(app)
		objs := append(objects(t, in{release: "foundation", layer: "alt-base", chart: "foundation", ns: "alt-app"}, quota),
			objects(t, in{release: "app", layer: "alt-app", chart: "app", ns: "alt-app"}, m)...)
		return Quotas(objs)
	}
	// 2 pods + 1 surge, each: init 1 CPU against app 700m + sidecar 500m
	// (its LimitRange default) = 1.2 → 3.6, and db 0.5: 4.1 limits.cpu > 4;
	// requests (init 1 → 3.1) and memory (3 × 640Mi + 128Mi = 2Gi) fit.
	wantErr(t, run("2", "5Gi"), "1 problem(s)", "foundation/templates/quota.yaml", "ResourceQuota alt-app/alt-quota",
		"namespace alt-app: limits.cpu: the rendered objects need 4100m at once, the quota allows 4",
		"biggest: Deployment alt-app/app ×3 3600m, StatefulSet alt-app/db ×1 500m")
	// One replica (and its surge) fits.
	wantErr(t, run("1", "5Gi"))
	// A claim past requests.storage.
	err := run("1", "20Gi")
	wantErr(t, err, "requests.storage: the rendered objects need 20Gi at once, the quota allows 10Gi (biggest: StatefulSet alt-app/db claim data ×1 20Gi)")
}

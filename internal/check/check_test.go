package check

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
)

var base = in{layer: "alt-base", release: "base", chart: "charts/base", ns: "default"}
var app = in{layer: "alt-app", release: "app", chart: "charts/app", ns: "alt-app"}

const namespaceYAML = `---
# Source: base/templates/namespaces.yaml
apiVersion: v1
kind: Namespace
metadata:
  name: alt-app
  labels:
    pod-security.kubernetes.io/enforce: restricted
`

// goodDeployment passes every check; cases break one thing in it.
const goodDeployment = `---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app.kubernetes.io/name: app}
  template:
    metadata:
      labels: {app.kubernetes.io/name: app}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      initContainers:
        - name: init
          image: busybox:1.37
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
      containers:
        - name: app
          image: app-server:sim
          imagePullPolicy: IfNotPresent
          ports:
            - {name: http, containerPort: 8080}
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: app-credentials, key: password}
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          readinessProbe:
            tcpSocket: {port: http}
          livenessProbe:
            tcpSocket: {port: http}
`

const appSecretYAML = `---
# Source: app/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: app-credentials
type: Opaque
data:
  password: c2VjcmV0
`

func TestRender(t *testing.T) {
	helm, r := tool(t, "helm")
	s := loadStack(t, filepath.Join("testdata", "repo"))
	var calls atomic.Int32
	r.Record = func(c run.Cmd) { // called from Render's goroutines
		if len(c.Args) > 0 && c.Args[0] == "template" {
			calls.Add(1)
		}
	}
	rs, err := Render(context.Background(), r, s, helm, "dev", "staging", "prod")
	wantErr(t, err)
	// base renders the same in every profile, app the same in staging and prod.
	if n := calls.Load(); n != 3 {
		t.Errorf("helm template ran %d times, want 3 (identical releases rendered once)", n)
	}
	skipped := Skipped(rs)
	if len(skipped) != 1 || !strings.Contains(skipped[0].String(), "cert-manager") {
		t.Errorf("want one note on the remote chart cert-manager, got %v", skipped)
	}
	var dep *Object
	secrets := map[string]int{}
	for _, o := range Objects(rs) {
		if o.Kind == "Deployment" && o.Profile == "dev" {
			dep = o
		}
		if o.Kind == "Secret" {
			secrets[o.Profile]++
		}
	}
	if dep == nil {
		t.Fatal("no Deployment rendered in dev")
	}
	if dep.Source != "charts/app/templates/deployment.yaml" || dep.Layer != "alt-app" || dep.Release != "app" || dep.Namespace != "alt-app" {
		t.Errorf("Deployment source/layer/release/namespace = %s %s %s %s", dep.Source, dep.Layer, dep.Release, dep.Namespace)
	}
	if img := workloads([]*Object{dep})[0].spec.Containers[0].Image; img != "app-server:sim" {
		t.Errorf("image = %q, want the placeholder app-server:sim", img)
	}
	if secrets["dev"] != 1 || secrets["staging"] != 0 || secrets["prod"] != 0 {
		t.Errorf("Secrets per profile = %v, want one in dev only", secrets)
	}
}

func TestRenderFailure(t *testing.T) {
	helm, r := tool(t, "helm")
	repo := fixture(t, edit{"charts/app/templates/deployment.yaml", "replicas: {{ .Values.replicaCount }}", "replicas: {{ .Values.replicaCount | nosuchfunc }}"})
	_, err := Render(context.Background(), r, loadStack(t, repo), helm, "dev")
	wantErr(t, err, "charts/app", "release app (layer alt-app)", "nosuchfunc")
}

func TestStrict(t *testing.T) {
	crd := `---
# Source: crds/templates/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer}
                color: {type: string, enum: [red, blue]}
`
	widget := func(spec string) string {
		return "---\n# Source: app/templates/widget.yaml\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n" + spec
	}
	crdSource := in{layer: "alt-base", release: "crds", chart: "charts/crds", ns: "default"}
	cases := []struct {
		name      string
		objs      func(t *testing.T) []*Object
		want      []string
		wantNotes int
	}{
		{name: "good", objs: func(t *testing.T) []*Object { return objects(t, app, goodDeployment) }},
		{name: "mistyped field", objs: func(t *testing.T) []*Object {
			return objects(t, app, strings.Replace(goodDeployment, "containerPort: 8080", `containerPort: "8080"`, 1))
		}, want: []string{"charts/app/templates/deployment.yaml", "Deployment alt-app/app", "containerPort"}},
		{name: "duplicate field", objs: func(t *testing.T) []*Object {
			return objects(t, app, strings.Replace(goodDeployment, "  replicas: 1\n", "  replicas: 1\n  replicas: 2\n", 1))
		}, want: []string{"Deployment alt-app/app", `"replicas" already set`}},
		{name: "removed apiVersion", objs: func(t *testing.T) []*Object {
			return objects(t, app, strings.Replace(goodDeployment, "apiVersion: apps/v1", "apiVersion: apps/v1beta1", 1))
		}, want: []string{"Deployment alt-app/app", "does not serve apps/v1beta1 by default", "use apps/v1"}},
		{name: "custom resource without its CRD", objs: func(t *testing.T) []*Object {
			return objects(t, app, widget("  size: 1\n"))
		}, wantNotes: 1},
		{name: "custom resource matching its CRD", objs: func(t *testing.T) []*Object {
			return append(objects(t, crdSource, crd), objects(t, app, widget("  size: 1\n  color: red\n"))...)
		}, wantNotes: 1}, // the CRD itself: no Go types for apiextensions.k8s.io
		{name: "custom resource with an unknown field", objs: func(t *testing.T) []*Object {
			return append(objects(t, crdSource, crd), objects(t, app, widget("  size: 1\n  colour: red\n"))...)
		}, want: []string{"charts/app/templates/widget.yaml", "Widget alt-app/w", `unknown field "spec.colour"`, "widgets.example.com"}, wantNotes: 1},
		{name: "custom resource with a mistyped and a missing field", objs: func(t *testing.T) []*Object {
			return append(objects(t, crdSource, crd), objects(t, app, widget("  color: green\n"))...)
		}, want: []string{"spec.size: required", "green is not one of"}, wantNotes: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			notes, err := Strict(c.objs(t))
			wantErr(t, err, c.want...)
			if len(notes) != c.wantNotes {
				t.Errorf("notes = %v, want %d", notes, c.wantNotes)
			}
			for _, n := range notes {
				if !strings.Contains(n.String(), "no schema") {
					t.Errorf("note %q does not say there is no schema", n)
				}
			}
		})
	}
}

// A misspelled field in a chart template fails Strict on the rendered
// object, naming the template file, the object and the field.
func TestStrictChart(t *testing.T) {
	helm, r := tool(t, "helm")
	repo := fixture(t, edit{"charts/app/templates/deployment.yaml", "  replicas:", "  replica:"})
	rs, err := Render(context.Background(), r, loadStack(t, repo), helm, "dev")
	wantErr(t, err)
	_, err = Strict(Objects(rs))
	wantErr(t, err, "charts/app/templates/deployment.yaml", "Deployment alt-app/app (release app, layer alt-app)", `unknown field "spec.replica"`, "[dev]")
}

func TestPolicy(t *testing.T) {
	cases := []struct {
		name         string
		old          string
		new          string
		restrictedNS bool
		want         []string
	}{
		{name: "good"},
		{name: "latest image", old: "image: app-server:sim", new: "image: nginx:latest",
			want: []string{"charts/app/templates/deployment.yaml", "Deployment alt-app/app", "containers[app].image", `"nginx:latest" uses the tag latest`}},
		{name: "untagged image", old: "image: busybox:1.37", new: "image: docker.io/library/busybox",
			want: []string{"Deployment alt-app/app", "initContainers[init].image", "has no tag"}},
		{name: "digest pins an image", old: "image: busybox:1.37", new: "image: busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{name: "pull policy Never", old: "imagePullPolicy: IfNotPresent", new: "imagePullPolicy: Never",
			want: []string{"Deployment alt-app/app", "imagePullPolicy: Never"}},
		{name: "container without resources", old: "          resources:\n            requests: {cpu: 10m, memory: 16Mi}\n            limits: {cpu: 100m, memory: 64Mi}\n          securityContext:\n            allowPrivilegeEscalation: false\n            capabilities: {drop: [ALL]}\n          readinessProbe",
			new:  "          securityContext:\n            allowPrivilegeEscalation: false\n            capabilities: {drop: [ALL]}\n          readinessProbe",
			want: []string{"Deployment alt-app/app", "containers[app].resources: no requests.cpu, requests.memory, limits.cpu, limits.memory"}},
		{name: "init container without a memory limit", old: "limits: {cpu: 100m, memory: 64Mi}\n          securityContext", new: "limits: {cpu: 100m}\n          securityContext",
			want: []string{"initContainers[init].resources: no limits.memory"}},
		{name: "missing readiness probe", old: "          readinessProbe:\n            tcpSocket: {port: http}\n", new: "",
			want: []string{"Deployment alt-app/app", "containers[app]: no readinessProbe"}},
		{name: "missing liveness probe", old: "          livenessProbe:\n            tcpSocket: {port: http}\n", new: "",
			want: []string{"containers[app]: no livenessProbe"}},
		{name: "privileged container in a restricted namespace", old: "            allowPrivilegeEscalation: false\n            capabilities: {drop: [ALL]}\n          readinessProbe",
			new:  "            privileged: true\n            allowPrivilegeEscalation: true\n            capabilities: {drop: [ALL]}\n          readinessProbe",
			want: []string{"charts/app/templates/deployment.yaml", "Deployment alt-app/app", `namespace alt-app enforces Pod Security "restricted"`, `privileged: container "app" must not set securityContext.privileged=true`, `allowPrivilegeEscalation != false: container "app" must set securityContext.allowPrivilegeEscalation=false`}},
		{name: "root and host network in a restricted namespace", old: "      automountServiceAccountToken: false\n      securityContext:\n        runAsNonRoot: true\n",
			new:  "      automountServiceAccountToken: false\n      hostNetwork: true\n      securityContext:\n        runAsUser: 0\n",
			want: []string{"host namespaces: hostNetwork=true", "runAsUser=0: pod must not set runAsUser=0", `pod or containers "init", "app" must set securityContext.runAsNonRoot=true`}},
		{name: "capabilities not dropped", old: "          securityContext:\n            allowPrivilegeEscalation: false\n            capabilities: {drop: [ALL]}\n          readinessProbe",
			new:  "          securityContext:\n            allowPrivilegeEscalation: false\n            capabilities: {add: [NET_ADMIN]}\n          readinessProbe",
			want: []string{`container "app" must set securityContext.capabilities.drop=["ALL"]`, `container "app" must not include "NET_ADMIN" in securityContext.capabilities.add`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dep := goodDeployment
			if c.old != "" {
				if !strings.Contains(dep, c.old) {
					t.Fatalf("test case: %q not in the Deployment", c.old)
				}
				dep = strings.Replace(dep, c.old, c.new, 1)
			}
			objs := append(objects(t, base, namespaceYAML), objects(t, app, dep)...)
			notes, err := Policy(objs)
			wantErr(t, err, c.want...)
			if len(notes) > 0 {
				t.Errorf("unexpected notes %v", notes)
			}
		})
	}

	t.Run("a level Pod Security does not know", func(t *testing.T) {
		ns := strings.Replace(namespaceYAML, "enforce: restricted", "enforce: strict", 1)
		if ns == namespaceYAML {
			t.Fatal("test case: no enforce label in the Namespace")
		}
		_, err := Policy(append(objects(t, base, ns), objects(t, app, goodDeployment)...))
		wantErr(t, err, "Deployment alt-app/app", "namespace alt-app: label pod-security.kubernetes.io/enforce", `"strict"`)
	})
	t.Run("namespace without a Namespace object", func(t *testing.T) {
		notes, err := Policy(objects(t, app, goodDeployment))
		wantErr(t, err)
		if len(notes) != 1 || !strings.Contains(notes[0].String(), "namespace alt-app is not among the rendered Namespace objects") {
			t.Errorf("notes = %v", notes)
		}
	})
	t.Run("short-lived workloads need no probes", func(t *testing.T) {
		job := strings.NewReplacer("apiVersion: apps/v1", "apiVersion: batch/v1", "kind: Deployment", "kind: Job",
			"  replicas: 1\n  selector:\n    matchLabels: {app.kubernetes.io/name: app}\n", "",
			"      automountServiceAccountToken: false\n", "      restartPolicy: Never\n      automountServiceAccountToken: false\n",
			"          readinessProbe:\n            tcpSocket: {port: http}\n          livenessProbe:\n            tcpSocket: {port: http}\n", "").Replace(goodDeployment)
		_, err := Policy(append(objects(t, base, namespaceYAML), objects(t, app, job)...))
		wantErr(t, err)
	})
}

func TestSecrets(t *testing.T) {
	good := func(t *testing.T) []*Object {
		return append(objects(t, app, goodDeployment), objects(t, app, appSecretYAML)...)
	}
	cases := []struct {
		name  string
		edits []edit
		objs  func(t *testing.T) []*Object
		want  []string
	}{
		{name: "good", objs: good},
		{name: "literal password in a values file", objs: good,
			edits: []edit{{"skaffold/02-app/values/app.yaml", "  passwordLength: 24\n", "  passwordLength: 24\n  password: hunter2\n"}},
			want:  []string{"skaffold/02-app/values/app.yaml", "line 6", `credentials.password: key "password" holds a literal value`}},
		{name: "literal token as a chart default", objs: good,
			edits: []edit{{"charts/app/values.yaml", "", "# -- Admin API token.\nadminToken: s3cr3t-t0ken\n"}},
			want:  []string{"charts/app/values.yaml", `adminToken: key "adminToken" holds a literal value`}},
		{name: "literal key in an env list", objs: good,
			edits: []edit{{"skaffold/02-app/values/app.yaml", "", "extraEnv:\n  - name: API_KEY\n    value: abc\n  - {name: MASTER_KEY, value: xyz}\n"}},
			want:  []string{`extraEnv[0]: key "API_KEY" holds a literal value`, `extraEnv[1]: key "MASTER_KEY" holds a literal value`}},
		{name: "URL with a password", objs: good,
			edits: []edit{{"skaffold/02-app/values/app.yaml", "", "databaseURL: postgres://app:hunter2@db.alt-app.svc:5432/app\n"}},
			want:  []string{"skaffold/02-app/values/app.yaml", "databaseURL: a URL with an embedded password"}},
		{name: "references are not secrets", objs: good,
			edits: []edit{{"skaffold/02-app/values/app.yaml", "", strings.Join([]string{
				"existingSecret: some-secret",
				"tokenFile: /var/run/secrets/token",
				"TOKEN_SECRET_NAME: auth-token",
				"apiToken: \"{{ .Values.global.token }}\"",
				"password: \"\"",
				"generateToken: true",
				"databaseURL: postgres://app:$(DB_PASSWORD)@db:5432/app",
				"configRef: {configMap: app-config, key: settings}",
				"secretEnv:",
				"  DB_PASSWORD: {secret: app-credentials, key: password}",
				""}, "\n")}}},
		{name: "literal secret env var", objs: func(t *testing.T) []*Object {
			dep := strings.Replace(goodDeployment, "          env:\n", "          env:\n            - {name: API_TOKEN, value: abc123}\n            - {name: TOKEN_FILE, value: /var/run/token}\n", 1)
			return objects(t, app, dep)
		}, want: []string{"charts/app/templates/deployment.yaml", "Deployment alt-app/app", "containers[app].env[API_TOKEN]"}},
		{name: "Secret written in its template", objs: func(t *testing.T) []*Object {
			return objects(t, in{layer: "alt-app", release: "app", chart: "charts/app", ns: "alt-app"},
				strings.Replace(appSecretYAML, "app/templates/secret.yaml", "app/templates/literal-secret.yaml", 1))
		}, edits: []edit{{"charts/app/templates/literal-secret.yaml", "", "apiVersion: v1\nkind: Secret\nmetadata: {name: app-credentials}\ndata:\n  password: c2VjcmV0\n"}},
			want: []string{"charts/app/templates/literal-secret.yaml", "Secret alt-app/app-credentials", "does not `lookup`", "data password: not generated"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := fixture(t, c.edits...)
			wantErr(t, Secrets(repo, c.objs(t)), c.want...)
		})
	}
}

// TestSecretVerifiedByCalls: a Secret a profile does not create counts as
// verified only when a hook calls check-secret with its namespace, name and
// key; a hook whose text merely holds those words does not count.
func TestSecretVerifiedByCalls(t *testing.T) {
	const hook = `command: ["scripts/check-secret", "alt-app", "app-credentials", "password"]`
	objs := func(t *testing.T) []*Object {
		st := in{profile: "staging", layer: "alt-app", release: "app", chart: "charts/app", ns: "alt-app"}
		return slices.Concat(objects(t, in{profile: "staging", layer: "alt-base", release: "base", chart: "charts/base", ns: "default"}, namespaceYAML), objects(t, st, goodDeployment))
	}
	const l02 = "skaffold/02-app/skaffold.yaml"
	cases := []struct {
		name string
		hook string
		want []string
	}{
		{name: "check-secret with the key", hook: hook},
		{name: "a kubectl command naming the Secret and the key", hook: `command: ["scripts/kube", "get", "secret", "app-credentials", "-n", "alt-app", "-o", "jsonpath={.data.password}"]`,
			want: []string{"Deployment alt-app/app", "Secret alt-app/app-credentials key password is not created in this profile and no hook of layer alt-app", "scripts/check-secret alt-app app-credentials KEY..."}},
		{name: "check-secret of another namespace", hook: `command: ["scripts/check-secret", "alt-base", "app-credentials", "password"]`,
			want: []string{"Secret alt-app/app-credentials key password is not created in this profile"}},
		{name: "check-secret of other keys", hook: `command: ["scripts/check-secret", "alt-app", "app-credentials", "username", "passwords"]`,
			want: []string{"Secret alt-app/app-credentials key password is not created in this profile"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var edits []edit
			if c.hook != hook {
				for range 2 { // staging and prod
					edits = append(edits, edit{l02, hook, c.hook})
				}
			}
			s := loadStack(t, fixture(t, edits...))
			_, err := References(s, fixtureGraph(), objs(t))
			wantErr(t, err, c.want...)
		})
	}
}

func TestReferences(t *testing.T) {
	s := loadStack(t, filepath.Join("testdata", "repo"))
	g := fixtureGraph()
	later := in{layer: "alt-base", release: "early", chart: "charts/early", ns: "alt-app"}
	service := `---
# Source: app/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  selector: {app.kubernetes.io/name: app}
  ports: [{port: 8080}]
`
	withEnv := func(value string) string {
		return strings.Replace(goodDeployment, "          env:\n", "          env:\n            - {name: APP_URL, value: \""+value+"\"}\n", 1)
	}
	early := func(dep string) string {
		return strings.NewReplacer("app/templates/deployment.yaml", "early/templates/deployment.yaml", "name: app\n", "name: early\n").Replace(dep)
	}
	cases := []struct {
		name  string
		objs  func(t *testing.T) []*Object
		want  []string
		notes int
	}{
		{name: "good", objs: func(t *testing.T) []*Object {
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, app, goodDeployment), objects(t, app, appSecretYAML), objects(t, app, service))
		}},
		{name: "Secret of a later layer", objs: func(t *testing.T) []*Object {
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, later, early(goodDeployment)), objects(t, app, appSecretYAML))
		}, want: []string{"charts/early/templates/deployment.yaml", "Deployment alt-app/early (release early, layer alt-base)",
			"env[DB_PASSWORD]: Secret alt-app/app-credentials is created by layer alt-app (release app), which layer alt-base does not depend on"}},
		{name: "missing Secret key", objs: func(t *testing.T) []*Object {
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, app, strings.Replace(goodDeployment, "key: password", "key: passwd", 1)), objects(t, app, appSecretYAML))
		}, want: []string{"Deployment alt-app/app", `Secret alt-app/app-credentials (release app) has no key "passwd"`}},
		{name: "ConfigMap, ServiceAccount and PVC nobody creates", objs: func(t *testing.T) []*Object {
			dep := strings.Replace(goodDeployment, "      containers:\n", "      serviceAccountName: app\n      volumes:\n        - {name: c, configMap: {name: app-config}}\n        - {name: d, persistentVolumeClaim: {claimName: data}}\n        - {name: ca, configMap: {name: kube-root-ca.crt}}\n      containers:\n", 1)
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, app, dep), objects(t, app, appSecretYAML))
		}, want: []string{"volumes[c]: ConfigMap alt-app/app-config is created by no release", "volumes[d]: PersistentVolumeClaim alt-app/data is created by no release",
			"serviceAccountName: ServiceAccount alt-app/app is created by no release"}},
		{name: "namespace of a later layer", objs: func(t *testing.T) []*Object {
			return slices.Concat(objects(t, in{layer: "alt-app", release: "app", chart: "charts/app", ns: "default"}, strings.Replace(namespaceYAML, "base/templates", "app/templates", 1)),
				objects(t, later, strings.Replace(appSecretYAML, "app/templates", "early/templates", 1)))
		}, want: []string{"Secret alt-app/app-credentials (release early, layer alt-base)", "namespace alt-app is created by layer alt-app, which layer alt-base does not depend on"}},
		{name: "namespace nobody creates", objs: func(t *testing.T) []*Object {
			return objects(t, app, appSecretYAML)
		}, want: []string{"Secret alt-app/app-credentials", "namespace alt-app is created by no release"}},
		{name: "DNS name of a later layer's Service", objs: func(t *testing.T) []*Object {
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, app, appSecretYAML), objects(t, app, service),
				objects(t, in{layer: "alt-base", release: "early", chart: "charts/early", ns: "alt-app"},
					early(strings.Replace(withEnv("http://app.alt-app.svc.cluster.local:8080"), "secretKeyRef: {name: app-credentials, key: password}", "fieldRef: {fieldPath: metadata.name}", 1))))
		}, want: []string{"Deployment alt-app/early (release early, layer alt-base)", `env[APP_URL]: "app.alt-app.svc.cluster.local" names Service alt-app/app of layer alt-app (release app), which layer alt-base does not depend on`}},
		{name: "DNS name of a Service nobody creates", objs: func(t *testing.T) []*Object {
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, app, appSecretYAML), objects(t, app, withEnv("http://api.alt-app:9000")))
		}, want: []string{`env[APP_URL]: "api.alt-app" names Service alt-app/api, which no release creates`}},
		{name: "DNS names that are not Services", objs: func(t *testing.T) []*Object {
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, app, appSecretYAML),
				objects(t, app, withEnv("https://example.com,identity.default_schema,schema.alt-app.json,kubernetes.default.svc,.svc")))
		}},
		{name: "DNS name in a ConfigMap a workload reads", objs: func(t *testing.T) []*Object {
			cm := "---\n# Source: early/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: early-config}\ndata:\n  nginx.conf: 'proxy_pass http://app.alt-app.svc:8080;'\n"
			dep := early(strings.Replace(goodDeployment, "      containers:\n", "      volumes:\n        - {name: c, configMap: {name: early-config}}\n      containers:\n", 1))
			dep = strings.Replace(dep, "secretKeyRef: {name: app-credentials, key: password}", "fieldRef: {fieldPath: metadata.name}", 1)
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, app, service), objects(t, later, cm), objects(t, later, dep))
		}, want: []string{"Deployment alt-app/early", "ConfigMap early-config data.nginx.conf", `"app.alt-app.svc" names Service alt-app/app of layer alt-app`}},
		{name: "DNS name in a ConfigMap nobody reads", objs: func(t *testing.T) []*Object {
			cm := "---\n# Source: base/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: directory, namespace: alt-app}\ndata:\n  APP_URL: http://app.alt-app.svc:8080\n"
			return slices.Concat(objects(t, base, namespaceYAML), objects(t, base, cm), objects(t, app, service))
		}, notes: 1},
		{name: "Secret provided outside the repository, verified by a hook", objs: func(t *testing.T) []*Object {
			st := in{profile: "staging", layer: "alt-app", release: "app", chart: "charts/app", ns: "alt-app"}
			return slices.Concat(objects(t, in{profile: "staging", layer: "alt-base", release: "base", chart: "charts/base", ns: "default"}, namespaceYAML), objects(t, st, goodDeployment))
		}},
		{name: "Secret provided outside the repository, key not verified", objs: func(t *testing.T) []*Object {
			st := in{profile: "staging", layer: "alt-app", release: "app", chart: "charts/app", ns: "alt-app"}
			return slices.Concat(objects(t, in{profile: "staging", layer: "alt-base", release: "base", chart: "charts/base", ns: "default"}, namespaceYAML),
				objects(t, st, strings.Replace(goodDeployment, "key: password", "key: username", 1)))
		}, want: []string{"Deployment alt-app/app", "Secret alt-app/app-credentials key username is not created in this profile and no hook of layer alt-app", "[staging]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			notes, err := References(s, g, c.objs(t))
			wantErr(t, err, c.want...)
			if len(notes) != c.notes {
				t.Errorf("notes = %v, want %d", notes, c.notes)
			}
		})
	}
}

// clientEnv is the client's environment in the network fixture: it calls
// server through its Service.
const clientEnv = "            - {name: SERVER_URL, value: \"http://server.alt-b.svc.cluster.local/api\"}\n"

// The network fixture: client (alt-a) may call server (alt-b) on 8080 and
// does (env, with the Services server and other); other (alt-b) listens on
// 9090 and is called by nobody. env replaces the client's environment
// (SERVER_URL).
func netObjects(t *testing.T, drop []string, extra string, env ...string) []*Object {
	if env == nil {
		env = []string{clientEnv}
	}
	ns := func(name string) string {
		return "---\n# Source: base/templates/ns.yaml\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels: {pod-security.kubernetes.io/enforce: restricted}\n" +
			"---\n# Source: base/templates/netpol.yaml\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny, namespace: " + name + "}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"
	}
	deploy := func(name, ns string, port string) string {
		d := strings.NewReplacer("name: app\n", "name: "+name+"\n", "app.kubernetes.io/name: app", "app.kubernetes.io/name: "+name).Replace(goodDeployment)
		d = strings.Replace(d, "metadata:\n  name: "+name+"\n", "metadata:\n  name: "+name+"\n  namespace: "+ns+"\n", 1)
		return strings.Replace(d, "containerPort: 8080", "containerPort: "+port, 1)
	}
	policies := map[string]string{
		"egress-client": `---
# Source: base/templates/netpol.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-client, namespace: alt-a}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: client}}
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: alt-b}}
          podSelector: {matchLabels: {app.kubernetes.io/name: server}}
      ports: [{protocol: TCP, port: 8080}]
`,
		"ingress-server": `---
# Source: base/templates/netpol.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ingress-server, namespace: alt-b}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: server}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: alt-a}}
          podSelector: {matchLabels: {app.kubernetes.io/name: client}}
      ports: [{protocol: TCP, port: http}]
`,
	}
	service := func(name string, port string) string {
		return "---\n# Source: app/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: alt-b}\nspec:\n  selector: {app.kubernetes.io/name: " + name + "}\n  ports: [{name: http, port: " + port + ", targetPort: http}]\n"
	}
	var b strings.Builder
	b.WriteString(ns("alt-a"))
	if !slices.Contains(drop, "alt-b") {
		b.WriteString(ns("alt-b"))
	} else {
		b.WriteString("---\n# Source: base/templates/ns.yaml\napiVersion: v1\nkind: Namespace\nmetadata: {name: alt-b}\n")
	}
	for _, k := range sortedMapKeys(policies) {
		if !slices.Contains(drop, k) {
			b.WriteString(policies[k])
		}
	}
	b.WriteString(extra)
	objs := objects(t, base, b.String())
	client := strings.Replace(deploy("client", "alt-a", "8081"), "          env:\n", "          env:\n"+strings.Join(env, ""), 1)
	objs = append(objs, objects(t, app, client+deploy("server", "alt-b", "8080")+deploy("other", "alt-b", "9090")+service("server", "80")+service("other", "9090"))...)
	return objs
}

func TestFlows(t *testing.T) {
	table := Table{Flows: []Flow{{From: Endpoint{Namespace: "alt-a", App: "client"}, To: Endpoint{Namespace: "alt-b", App: "server"}, Ports: []int32{8080}}}}
	cases := []struct {
		name  string
		table func(Table) Table
		drop  []string
		extra string
		env   []string // the client's environment (nil: clientEnv)
		want  []string
	}{
		{name: "good"},
		{name: "call without a flow", env: []string{clientEnv, "            - {name: OTHER_URL, value: \"http://other.alt-b.svc:9090\"}\n"},
			want: []string{"charts/app/templates/deployment.yaml", "Deployment alt-a/client (release app, layer alt-app)",
				`env[OTHER_URL]: "other.alt-b.svc" names Service alt-b/other, served by Deployment alt-b/other on container port 9090, but the flow table`,
				"add flow alt-a/client -> alt-b/other:9090", "[dev]"}},
		{name: "host and port in two variables", env: []string{clientEnv, "            - {name: OTHER_HOST, value: other.alt-b}\n", "            - {name: OTHER_PORT, value: \"9090\"}\n"},
			want: []string{`env[OTHER_HOST]: "other.alt-b" names Service alt-b/other, served by Deployment alt-b/other on container port 9090`}},
		{name: "port the Service does not have", env: []string{"            - {name: SERVER_HOST, value: server.alt-b.svc}\n", "            - {name: SERVER_PORT, value: \"8080\"}\n"},
			want: []string{`env[SERVER_HOST]: "server.alt-b.svc" port 8080: Service alt-b/server has no such port (ports 80)`}},
		{name: "address in a ConfigMap the client reads", env: []string{"            - name: UPSTREAM\n              valueFrom: {configMapKeyRef: {name: client-config, key: upstream.conf}}\n"},
			extra: "---\n# Source: base/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: client-config, namespace: alt-a}\ndata:\n  upstream.conf: 'proxy_pass http://other.alt-b.svc.cluster.local:9090;'\n",
			want:  []string{"charts/base/templates/cm.yaml", "Deployment alt-a/client", "env[UPSTREAM]: ConfigMap client-config data.upstream.conf", "add flow alt-a/client -> alt-b/other:9090"}},
		{name: "flow nobody calls", env: []string{},
			want: []string{"charts/foundation/values.yaml", "flow alt-a/client -> alt-b/server:8080", "port 8080: no workload of alt-a/client names a Service of alt-b/server on it in any profile"}},
		{name: "flow marked usedFrom monitoring, destination not scraped", env: []string{}, table: func(t Table) Table {
			t.Flows[0].UsedFrom = "monitoring"
			return t
		}, want: []string{"flow alt-a/client -> alt-b/server:8080", "usedFrom: monitoring, but no pod of alt-b/server is scraped on port 8080"}},
		{name: "flow marked with an unknown usedFrom", env: []string{}, table: func(t Table) Table {
			t.Flows[0].UsedFrom = "ingress"
			return t
		}, want: []string{"flow alt-a/client -> alt-b/server:8080", `usedFrom: "ingress" is not one of alt-code, monitoring`}},
		{name: "flow without an ingress policy", drop: []string{"ingress-server"},
			want: []string{"charts/foundation/values.yaml", "flow alt-a/client -> alt-b/server:8080", "ingress to Deployment alt-b/server from Deployment alt-a/client port 8080 is not allowed by any NetworkPolicy in namespace alt-b"}},
		{name: "flow without an egress policy", drop: []string{"egress-client"},
			want: []string{"egress from Deployment alt-a/client to Deployment alt-b/server port 8080 is not allowed"}},
		{name: "flow to the wrong port", table: func(t Table) Table {
			t.Flows = append(t.Flows, Flow{From: Endpoint{Namespace: "alt-a", App: "client"}, To: Endpoint{Namespace: "alt-b", App: "other"}, Ports: []int32{9090}})
			return t
		}, want: []string{"flow alt-a/client -> alt-b/other:9090", "egress from Deployment alt-a/client to Deployment alt-b/other port 9090 is not allowed", "ingress to Deployment alt-b/other"}},
		{name: "flow naming no workload", table: func(t Table) Table {
			t.Flows = append(t.Flows, Flow{From: Endpoint{Namespace: "alt-a", App: "client", Component: "worker"}, To: Endpoint{Namespace: "alt-b", App: "server"}, Ports: []int32{8080}})
			return t
		}, want: []string{"flow alt-a/client/worker -> alt-b/server:8080", "the source alt-a/client/worker selects no rendered workload"}},
		{name: "flow to a port the destination does not serve", table: func(t Table) Table {
			t.Flows[0].Ports = []int32{8080, 8443}
			return t
		}, want: []string{"port 8443 is not a container port of Deployment alt-b/server"}},
		{name: "extra cross-namespace allow", extra: `---
# Source: base/templates/extra.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-alt-a, namespace: alt-b}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: alt-a}}}]
---
# Source: base/templates/extra.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-all-alt-b, namespace: alt-a}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: alt-b}}}]
`, want: []string{"charts/base/templates/extra.yaml", "Deployment alt-a/client -> Deployment alt-b/other port 9090/TCP",
			"allowed (NetworkPolicy alt-a/egress-all-alt-b and NetworkPolicy alt-b/allow-alt-a), but the flow table"}},
		{name: "namespace without default deny", drop: []string{"alt-b"},
			want: []string{"Namespace alt-b", "no default-deny NetworkPolicy for ingress and egress",
				// other is not isolated at all: client still cannot reach it (its egress is isolated), but the internet can.
				"the internet (203.0.113.10) -> Deployment alt-b/other port 9090/TCP", "no NetworkPolicy isolates Deployment alt-b/other"}},
		{name: "internet egress not in the table", extra: `---
# Source: base/templates/extra.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: internet, namespace: alt-a}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: client}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10]}}]
      ports: [{port: 443}]
`, want: []string{"Deployment alt-a/client -> the internet (203.0.113.10) port 443", "only internetEgress and kubernetesAPI"}},
		{name: "internet egress in the table", table: func(t Table) Table {
			t.InternetEgress = []Exposure{{Endpoint: Endpoint{Namespace: "alt-a", App: "client"}, Ports: []int32{443}}}
			return t
		}, extra: `---
# Source: base/templates/extra.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: internet, namespace: alt-a}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: client}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10]}}]
      ports: [{port: 443}]
`},
		{name: "ipBlock that reaches pods", extra: `---
# Source: base/templates/extra.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: wide-egress, namespace: alt-a}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: client}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 10.0.0.0/8}}]
---
# Source: base/templates/extra.yaml
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ingress-other, namespace: alt-b}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: other}}
  policyTypes: [Ingress]
  ingress:
    - from: [{ipBlock: {cidr: 10.0.0.0/8}}]
`, want: []string{"Deployment alt-a/client -> Deployment alt-b/other port 9090/TCP", "NetworkPolicy alt-a/wide-egress"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := Table{Flows: slices.Clone(table.Flows)}
			tb.Flows[0].Ports = slices.Clone(table.Flows[0].Ports)
			if c.table != nil {
				tb = c.table(tb)
			}
			wantErr(t, Flows(tb, netObjects(t, c.drop, c.extra, c.env...)), c.want...)
		})
	}
}

func TestFlowTable(t *testing.T) {
	tb, err := FlowTable(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Flows) < 20 || len(tb.InternetEgress) == 0 || len(tb.PublicIngress) == 0 || len(tb.KubernetesAPI.Clients) == 0 {
		t.Errorf("table of the repository: %d flows, %d internetEgress, %d publicIngress, %d kubernetesAPI clients",
			len(tb.Flows), len(tb.InternetEgress), len(tb.PublicIngress), len(tb.KubernetesAPI.Clients))
	}
	repo := fixture(t,
		edit{FlowFile, "", "flows:\n  - from: {namespace: alt-a, app: a}\n    to: {namespace: alt-b, app: b}\n    ports: [80]\n"},
		edit{"override.yaml", "", "flows: []\npublicIngress:\n  - {namespace: alt-b, app: b, ports: [8080]}\n"})
	tb, err = FlowTable(repo)
	if err != nil || len(tb.Flows) != 1 || tb.Flows[0].To.App != "b" {
		t.Errorf("FlowTable = %+v, %v", tb, err)
	}
	tb, err = FlowTable(repo, "override.yaml")
	if err != nil || len(tb.Flows) != 0 || len(tb.PublicIngress) != 1 {
		t.Errorf("FlowTable with an override = %+v, %v", tb, err)
	}
	if _, err := FlowTable(fixture(t, edit{FlowFile, "", "flows:\n  - from: {namespace: alt-a, ap: a}\n"})); err == nil || !strings.Contains(err.Error(), "ap") {
		t.Errorf("a misspelled key in the table: err = %v", err)
	}
}

func TestLint(t *testing.T) {
	helm, r := tool(t, "helm")
	cases := []struct {
		name  string
		edits []edit
		want  []string
	}{
		{name: "good"},
		{name: "template error", edits: []edit{{"charts/app/templates/deployment.yaml", "  replicas: {{ .Values.replicaCount }}", "  replicas: {{ .Values.scaling.replicas }}"}},
			want: []string{"charts/app/templates/deployment.yaml:8", "chart charts/app with values skaffold/02-app/values/app.yaml (release app (alt-app))", "nil pointer", "[dev]", "[staging, prod]"}},
		{name: "values against the chart's schema", edits: []edit{{"charts/app/values.schema.json", "", `{"type": "object", "properties": {"replicaCount": {"type": "integer", "maximum": 0}}}`}},
			want: []string{"charts/app/values.yaml", "/replicaCount': maximum", "[dev]", "[staging, prod]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := fixture(t, c.edits...)
			wantErr(t, Lint(context.Background(), r, loadStack(t, repo), helm, "dev", "staging", "prod"), c.want...)
		})
	}
}

func TestSkaffoldRender(t *testing.T) {
	if testing.Short() {
		t.Skip("skaffold render takes seconds; skipped with -short")
	}
	helm, r := tool(t, "helm")
	sk, _ := tool(t, "skaffold")
	s := loadStack(t, fixture(t))
	objs, note, err := SkaffoldRender(context.Background(), r, s, sk, "dev")
	wantErr(t, err)
	if !strings.Contains(note.String(), CertManagerOff) {
		t.Errorf("note = %q", note)
	}
	rs, err := Render(context.Background(), r, s, helm, "dev")
	wantErr(t, err)
	wantErr(t, SameAsSkaffold(s, "dev", objs, rs))

	// A values file Skaffold cannot read fails the render, naming the root file.
	s = loadStack(t, fixture(t, edit{"skaffold/02-app/skaffold.yaml", "valuesFiles: [values/app.yaml]", "valuesFiles: [values/nope.yaml]"}))
	_, _, err = SkaffoldRender(context.Background(), r, s, sk, "dev")
	wantErr(t, err, stack.RootFile, "skaffold render -p dev")

	// An object the stack model renders but Skaffold does not is a problem.
	extra := objects(t, app, strings.Replace(appSecretYAML, "app-credentials", "extra", 1))
	rs[len(rs)-1].Objects = append(rs[len(rs)-1].Objects, extra...)
	wantErr(t, SameAsSkaffold(loadStack(t, fixture(t)), "dev", objs, rs), "Secret extra", "rendered 1 time(s) from the stack model but 0 time(s) by skaffold render")
}

// TestRepository runs every check on the real repository for every
// profile, and logs how long they took.
func TestRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("renders the whole platform three times; skipped with -short")
	}
	helm, r := tool(t, "helm")
	sk, _ := tool(t, "skaffold")
	ks, _ := tool(t, "kube-score")
	al, _ := tool(t, "actionlint")
	sc, _ := exec.LookPath(tools.Shellcheck.Bin) // "": skipped, with a note
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	s, err := stack.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	g, err := stack.MageGraph(filepath.Join(repo, "magefiles"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ALT_CHECK_NO_SKAFFOLD") != "" {
		sk = ""
	}
	rep, err := All(context.Background(), Options{Runner: r, Stack: s, Graph: g, Helm: helm, Skaffold: sk, KubeScore: ks,
		Shellcheck: sc, Actionlint: al, Profiles: []string{"dev", "staging", "prod"}})
	for _, n := range rep.Notes {
		t.Logf("note: %s", n)
	}
	for _, tm := range rep.Timings {
		t.Logf("%-24s %v", tm.Check, tm.Elapsed.Round(1e6))
	}
	t.Logf("all checks, three profiles: %v", rep.Elapsed.Round(1e6))
	if err != nil {
		t.Error(err)
	}
	var objs int
	for _, rd := range rep.Rendered {
		objs += len(rd.Objects)
	}
	var releases int
	for _, l := range s.Layers {
		v, err := l.View("dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		releases += len(v.Releases)
	}
	if len(rep.Rendered) != 3*releases || objs == 0 {
		t.Errorf("rendered %d releases (%d objects), want %d (%d per profile)", len(rep.Rendered), objs, 3*releases, releases)
	}
}

// statefulSetYAML is a StatefulSet governed by a headless Service, beside
// the ClusterIP Service its clients use: clean for kube-score.
const statefulSetYAML = `apiVersion: v1
kind: Service
metadata:
  name: cache
  namespace: {{ .Release.Namespace }}
spec:
  selector: {app.kubernetes.io/name: cache}
  ports: [{name: redis, port: 6379, targetPort: redis}]
---
apiVersion: v1
kind: Service
metadata:
  name: cache-headless
  namespace: {{ .Release.Namespace }}
spec:
  clusterIP: None
  selector: {app.kubernetes.io/name: cache}
  ports: [{name: redis, port: 6379, targetPort: redis}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: cache
  namespace: {{ .Release.Namespace }}
spec:
  serviceName: cache-headless
  replicas: 1
  selector:
    matchLabels: {app.kubernetes.io/name: cache}
  template:
    metadata:
      labels: {app.kubernetes.io/name: cache}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: cache
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          ports:
            - {name: redis, containerPort: 6379}
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          readinessProbe:
            exec: {command: [redis-cli, ping]}
          livenessProbe:
            tcpSocket: {port: redis}
`

func TestKubeScore(t *testing.T) {
	helm, r := tool(t, "helm")
	ks, _ := tool(t, "kube-score")
	const sts = "charts/app/templates/statefulset.yaml"
	// Every case starts from the fixture with namespaces written and the
	// StatefulSet added.
	clean := []edit{
		{"charts/app/templates/deployment.yaml", "  name: {{ .Release.Name }}\n", "  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\n"},
		{"charts/app/templates/secret.yaml", "  name: {{ .Values.credentials.secret }}\n", "  name: {{ .Values.credentials.secret }}\n  namespace: {{ .Release.Namespace }}\n"},
		{sts, "", statefulSetYAML},
	}
	cases := []struct {
		name  string
		edits []edit
		want  []string
		note  string // a note that must be reported
	}{
		{name: "clean"},
		{name: "StatefulSet without a headless Service", edits: []edit{{sts, "serviceName: cache-headless", "serviceName: cache"}},
			want: []string{sts + ": StatefulSet alt-app/cache (release app, layer alt-app): kube-score statefulset-has-servicename CRITICAL", "[dev, prod]"}},
		{name: "no metadata.namespace", edits: []edit{{sts, "  name: cache\n  namespace: {{ .Release.Namespace }}\nspec:\n  serviceName", "  name: cache\nspec:\n  serviceName"}},
			want: []string{sts + ": StatefulSet alt-app/cache (release app, layer alt-app): no metadata.namespace", "belongs in alt-app"}},
		{name: "an entry limited to objects covers no other", edits: []edit{{sts, "exec: {command: [redis-cli, ping]}", "tcpSocket: {port: redis}"}},
			want: []string{"StatefulSet alt-app/cache", "pod-probes-identical"}},
		{name: "an entry limited to profiles covers no other", edits: []edit{
			{sts, "serviceName: cache-headless", "serviceName: cache"},
			{KubeScoreFile, "", "  - check: statefulset-has-servicename\n    profiles: [dev]\n    reason: only dev\n"}},
			want: []string{"StatefulSet alt-app/cache", "statefulset-has-servicename", "[prod]"}},
		{name: "an entry that ignores nothing is a note", edits: []edit{{KubeScoreFile, "", "  - check: service-type\n    reason: no NodePort in the fixture\n"}},
			note: "kube-score: not checked: nothing: charts/kube-score.yaml ignore[5] (service-type)"},
		{name: "unknown check", edits: []edit{{KubeScoreFile, "", "  - check: no-such-check\n    reason: typo\n"}},
			want: []string{KubeScoreFile, `ignore[5].check: kube-score has no check "no-such-check"`}},
		{name: "no reason", edits: []edit{{KubeScoreFile, "", "  - check: service-type\n    profiles: [qa]\n    objects: [Service]\n"}},
			want: []string{`ignore[5].reason: ignoring "service-type" needs a reason`, `ignore[5].profiles[0]: no profile "qa"`, `ignore[5].objects[0]: "Service" is not "Kind namespace/name"`}},
		{name: "not the file's shape", edits: []edit{{KubeScoreFile, "", "  - check: service-type\n    reson: typo\n"}},
			want: []string{KubeScoreFile, "not a list of {check, reason} under ignore", "reson"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := fixture(t, append(slices.Clone(clean), c.edits...)...)
			rs, err := Render(context.Background(), r, loadStack(t, repo), helm, "dev", "prod")
			wantErr(t, err)
			notes, err := KubeScore(context.Background(), r, repo, ks, Objects(rs))
			wantErr(t, err, c.want...)
			if c.note != "" && !slices.ContainsFunc(notes, func(n Note) bool { return strings.Contains(n.String(), c.note) }) {
				t.Errorf("want a note %q, got %v", c.note, notes)
			}
			if c.note == "" && len(notes) > 0 {
				t.Errorf("want no note, got %v", notes)
			}
		})
	}
}

package check

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHookModel reads hooks as Hooks does: the objects their kubectl
// commands name once the shell has expanded them, and whether they can
// fail. Real hooks of the repository are broken in TestBrokenPlatform;
// these cases pin the reading itself.
func TestHookModel(t *testing.T) {
	sh := func(script string, args ...string) []string { return append([]string{"sh", "-c", script}, args...) }
	cases := []struct {
		name    string
		command []string
		refs    []string // target.String() of every object named, in order, deduplicated
		creates []string
		cannot  string // "" when the hook can fail, else what the problem says
	}{
		{name: "one kubectl command", command: []string{"kubectl", "rollout", "status", "deployment/api", "-n", "alt-apps", "--timeout=60s"},
			refs: []string{"Deployment alt-apps/api"}},
		{name: "flags before the verb, namespace with =", command: []string{"kubectl", "--context=x", "--namespace=alt-auth", "wait", "--for=condition=complete", "job/migrate"},
			refs: []string{"Job alt-auth/migrate"}},
		{name: "no namespace: the context's default", command: []string{"kubectl", "get", "configmap", "settings"},
			refs: []string{"ConfigMap default/settings"}},
		{name: "type then names, and cluster-scoped kinds", command: sh("kubectl get secret a b -n alt-x && kubectl get namespace alt-x alt-y && kubectl wait --for=condition=Ready clusterissuer/ca"),
			refs: []string{"Secret alt-x/a", "Secret alt-x/b", "Namespace alt-x", "Namespace alt-y", "ClusterIssuer ca"}},
		{name: "pods by selector", command: []string{"kubectl", "wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/name=db,!batch.kubernetes.io/job-name", "-n", "alt-db"},
			refs: []string{"Pod alt-db/-l app.kubernetes.io/name=db,!batch.kubernetes.io/job-name"}},
		{name: "a listing names nothing", command: sh("set -eu\nkubectl get networkpolicies,configmaps --all-namespaces -o name\nkubectl get pods -A\nkubectl auth can-i create secrets")},
		{name: "loops, functions and positional parameters are expanded", command: sh(`set -eu
k() { kubectl --context="${SKAFFOLD_KUBE_CONTEXT:-}" "$@"; }
ns=$1
shift
for t in alt-db/postgres alt-search/meili; do
  k --namespace="${t%%/*}" rollout status "statefulset/${t#*/}" --timeout=60s
done
for key in "$@"; do
  value=$(k -n "$ns" get secret creds -o "jsonpath={.data.$key}")
  [ -n "$value" ] || { echo "no $key" >&2; exit 1; }
done`, "check", "alt-apps", "username", "password"),
			refs: []string{"StatefulSet alt-db/postgres", "StatefulSet alt-search/meili", "Secret alt-apps/creds"}},
		{name: "what the hook creates is not a reference", command: sh("set -eu\nkubectl -n ops create job verify --from=cronjob/backup\nkubectl -n ops wait --for=condition=complete job/verify --timeout=60s"),
			refs: []string{"CronJob ops/backup", "Job ops/verify"}, creates: []string{"Job ops/verify"}},
		{name: "bash with errexit in its flags", command: []string{"bash", "-ec", "kubectl get secret s -n ns; echo ok"},
			refs: []string{"Secret ns/s"}},

		{name: "a trailing || true", command: sh("kubectl rollout status deployment/api -n alt-apps || true"),
			refs: []string{"Deployment alt-apps/api"}, cannot: "exits 0 even when all 1 command(s) it runs fail"},
		{name: "; true", command: sh("kubectl rollout status deployment/api -n alt-apps; true"),
			refs: []string{"Deployment alt-apps/api"}, cannot: "exits 0 even when all 1 command(s) it runs fail"},
		{name: "exit 0 after a failed check", command: sh("if ! kubectl get secret s -n ns; then echo missing; exit 0; fi"),
			refs: []string{"Secret ns/s"}, cannot: "exits 0"},
		{name: "set +e and an echo last", command: sh("set +e\nkubectl wait --for=condition=Ready pod -l app=x -n ns\necho done"),
			refs: []string{"Pod ns/-l app=x"}, cannot: "exits 0"},
		{name: "set +e and a check after", command: sh("set +e\nkubectl get secret s -n ns >/dev/null\nrc=$?\nkubectl get secret t -n ns\n[ $rc -eq 0 ]"),
			refs: []string{"Secret ns/s", "Secret ns/t"}},
		{name: "echo alone", command: []string{"echo", "layer ready"}, cannot: "exits 0 and runs no command that could fail"},
		{name: "a wait with no bound", command: sh("until kubectl get secret s -n ns; do sleep 1; done"),
			refs: []string{"Secret ns/s"}, cannot: "never ends"},
		{name: "a wait with a bound", command: sh("for i in 1 2 3; do kubectl get secret s -n ns && exit 0; sleep 1; done; exit 1"),
			refs: []string{"Secret ns/s"}},
		{name: "not a shell script", command: sh("kubectl get secret s -n ns; fi"), cannot: "cannot be interpreted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := model(hook{layer: "alt-x", file: "skaffold/x/skaffold.yaml", profile: "dev", phase: "before", command: c.command})
			var refs, creates []string
			for _, r := range m.refs {
				if !slices.Contains(refs, r.String()) {
					refs = append(refs, r.String())
				}
			}
			for _, r := range m.creates {
				creates = append(creates, r.String())
			}
			if m.exploreRun.err == nil && fmt.Sprint(refs) != fmt.Sprint(c.refs) {
				t.Errorf("refs = %q, want %q", refs, c.refs)
			}
			if fmt.Sprint(creates) != fmt.Sprint(c.creates) {
				t.Errorf("creates = %q, want %q", creates, c.creates)
			}
			wantCanFail(t, m, c.cannot)
		})
	}
}

// TestHookScripts reads hooks that run a script of scripts/ as Hooks and
// References do: the script runs with the hook's arguments and sources its
// library, and what it calls (check_secret with its namespace, name and
// keys; kubectl with the objects it names) is what counts.
func TestHookScripts(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	scripts := filepath.Join(repo, "scripts")
	cases := []struct {
		name    string
		command []string
		refs    []string // some of the objects named
		called  string   // a call the hook makes, "" for none
		cannot  string
	}{
		{name: "check-secret", command: []string{"scripts/check-secret", "alt-x", "creds", "username", "password"},
			refs: []string{"Secret alt-x/creds"}, called: "check_secret alt-x creds username password"},
		{name: "kube", command: []string{"scripts/kube", "rollout", "status", "deployment/api", "-n", "alt-apps", "--timeout=60s"},
			refs: []string{"Deployment alt-apps/api"}, called: "kube rollout status deployment/api -n alt-apps --timeout=60s"},
		{name: "a script that loops over Secrets", command: []string{"scripts/infrastructure-secrets"},
			refs:   []string{"Secret alt-database/postgres-credentials", "Secret alt-operations/postgres-credentials", "Secret alt-search/meilisearch-credentials"},
			called: "check_secret alt-operations meilisearch-credentials master-key"},
		{name: "a script that does not exist", command: []string{"scripts/chek-secret", "alt-x", "creds", "username"},
			cannot: "scripts/chek-secret, which does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hook{layer: "alt-x", file: "skaffold/x/skaffold.yaml", profile: "dev", phase: "before", command: c.command,
				scripts: scripts, script: filepath.Join(repo, c.command[0])}
			m := model(h)
			var refs []string
			for _, r := range m.refs {
				refs = append(refs, r.String())
			}
			for _, want := range c.refs {
				if !slices.Contains(refs, want) {
					t.Errorf("refs = %q, want %q among them", refs, want)
				}
			}
			var called []string
			for _, call := range m.exploreRun.called {
				called = append(called, strings.Join(call, " "))
			}
			if c.called != "" && !slices.Contains(called, c.called) {
				t.Errorf("calls = %q, want %q among them", called, c.called)
			}
			wantCanFail(t, m, c.cannot)
		})
	}
}

// wantCanFail holds the hook's model to its verdict: no problem when cannot
// is "", else a problem mentioning cannot that names the file, the layer
// and the hook.
func wantCanFail(t *testing.T, m hookModel, cannot string) {
	t.Helper()
	ps := m.canFail()
	switch {
	case cannot == "" && len(ps) > 0:
		t.Errorf("want a hook that can fail, got %v", ps)
	case cannot != "" && (len(ps) == 0 || !strings.Contains(ps.Error(), cannot)):
		t.Errorf("want a problem mentioning %q, got %v", cannot, ps)
	case cannot != "" && !strings.Contains(ps.Error(), "skaffold/x/skaffold.yaml: before-hook 0 of layer alt-x"):
		t.Errorf("the problem does not name the file, the layer and the hook: %v", ps)
	}
}

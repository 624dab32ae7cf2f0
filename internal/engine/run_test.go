package engine_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// leaseSeen is one look at the deploy lock while a run goes on.
type leaseSeen struct {
	holder string // "" when there is no Lease
	// opsVerified: the run had printed that 08-operations was verified,
	// the last thing it does before its lock is released.
	opsVerified bool
}

// TestTwoTargetsAreOneRun runs `foundation operations`, two targets named
// on one command line, and watches the deploy lock all along: one holder
// from the first deploy until the last layer is verified, then released;
// every layer deployed once; one summary.
func TestTwoTargetsAreOneRun(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.mage(nil, "sim:up"); err != nil {
		t.Fatalf("sim:up: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", p.kube)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)

	cmd := exec.Command(mage(t), "foundation", "operations")
	cmd.Dir, cmd.Env = p.dir, p.env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var seen []leaseSeen
	var runErr error
watch:
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "alt-platform-deploy", metav1.GetOptions{})
		cancel()
		// Read after the lease: a lease found gone once the run has
		// verified its last layer is the run's own release.
		verified := strings.Contains(out.String(), "✓ alt-operations: verify (")
		switch {
		case err == nil && l.Spec.HolderIdentity != nil:
			seen = append(seen, leaseSeen{*l.Spec.HolderIdentity, verified})
		case err == nil || apierrors.IsNotFound(err):
			seen = append(seen, leaseSeen{"", verified})
		default:
			t.Logf("reading the lease: %v", err)
		}
		select {
		case runErr = <-exited:
			break watch
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("mage foundation operations:\n%s", out)
	if runErr != nil {
		t.Fatalf("foundation operations: %v", runErr)
	}

	first := -1
	for i, s := range seen {
		if s.holder != "" {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatal("the deploy lock was never seen held")
	}
	held := 0
	for i, s := range seen[first:] {
		if s.opsVerified {
			break
		}
		if s.holder != seen[first].holder {
			t.Fatalf("the lock changed hands or was released before 08-operations was verified (look %d of %d after it was first seen): %q, then %q",
				i, len(seen)-first, seen[first].holder, s.holder)
		}
		held++
	}
	t.Logf("the lock was seen held by one run %d times in a row, until 08-operations was verified", held)
	if !strings.Contains(out.String(), "alt-operations: skaffold deploy") || held < 5 {
		t.Errorf("the lock was seen held %d times; the second target's layers ran without it?", held)
	}
	if _, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "alt-platform-deploy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the lock is still there after the run: %v", err)
	}
	if n := len(regexp.MustCompile(`(?m)^\s+LAYER\s+ACTION\s+TIME`).FindAllString(out.String(), -1)); n != 1 {
		t.Errorf("%d summaries, want one", n)
	}
	got := actions(out.String())
	for _, l := range []string{"alt-foundation", "alt-infrastructure", "alt-operations"} {
		if got[l] != "deployed" {
			t.Errorf("%s: %q, want deployed", l, got[l])
		}
		if n := strings.Count(out.String(), " • "+l+": skaffold deploy"); n != 1 {
			t.Errorf("%s deployed %d times", l, n)
		}
	}
	if len(got) != 3 {
		t.Errorf("the summary lists %v; want the three layers of the run", got)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// fakeLeases is the Leases API of one namespace as the API server keeps
// them: resourceVersions that change on every write, optimistic
// concurrency on update, UID and resourceVersion preconditions on delete.
// before[op] runs just before an operation (op: get, create, update,
// delete), to stage a race; fail[op] makes it fail.
type fakeLeases struct {
	mu     sync.Mutex
	cur    *coordv1.Lease
	rv     int
	before map[string]func()
	fail   map[string]error
	ops    []string
}

var leaseGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func newFakeLeases() *fakeLeases {
	return &fakeLeases{before: map[string]func(){}, fail: map[string]error{}}
}

func (f *fakeLeases) enter(op string) error {
	f.mu.Lock()
	hook := f.before[op]
	delete(f.before, op)
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	f.ops = append(f.ops, op)
	return f.fail[op]
}

func (f *fakeLeases) Get(_ context.Context, name string, _ metav1.GetOptions) (*coordv1.Lease, error) {
	err := f.enter("get")
	defer f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if f.cur == nil {
		return nil, apierrors.NewNotFound(leaseGR, name)
	}
	return f.cur.DeepCopy(), nil
}

func (f *fakeLeases) Create(_ context.Context, l *coordv1.Lease, _ metav1.CreateOptions) (*coordv1.Lease, error) {
	err := f.enter("create")
	defer f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if f.cur != nil {
		return nil, apierrors.NewAlreadyExists(leaseGR, l.Name)
	}
	f.rv++
	f.cur = l.DeepCopy()
	f.cur.ResourceVersion, f.cur.UID = strconv.Itoa(f.rv), types.UID(fmt.Sprintf("uid-%d", f.rv))
	return f.cur.DeepCopy(), nil
}

func (f *fakeLeases) Update(_ context.Context, l *coordv1.Lease, _ metav1.UpdateOptions) (*coordv1.Lease, error) {
	err := f.enter("update")
	defer f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if f.cur == nil {
		return nil, apierrors.NewNotFound(leaseGR, l.Name)
	}
	if l.ResourceVersion != "" && l.ResourceVersion != f.cur.ResourceVersion { // "" : unconditional, as the API server allows
		return nil, apierrors.NewConflict(leaseGR, l.Name, errors.New("the object has been modified"))
	}
	f.rv++
	uid := f.cur.UID
	f.cur = l.DeepCopy()
	f.cur.ResourceVersion, f.cur.UID = strconv.Itoa(f.rv), uid
	return f.cur.DeepCopy(), nil
}

func (f *fakeLeases) Delete(_ context.Context, name string, opts metav1.DeleteOptions) error {
	err := f.enter("delete")
	defer f.mu.Unlock()
	if err != nil {
		return err
	}
	if f.cur == nil {
		return apierrors.NewNotFound(leaseGR, name)
	}
	if p := opts.Preconditions; p != nil {
		if (p.UID != nil && *p.UID != f.cur.UID) || (p.ResourceVersion != nil && *p.ResourceVersion != f.cur.ResourceVersion) {
			return apierrors.NewConflict(leaseGR, name, errors.New("precondition failed"))
		}
	}
	f.cur = nil
	return nil
}

// holder is the identity in the fake's lease, "" when there is none.
func (f *fakeLeases) holder() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return ""
	}
	return identityOf(f.cur).ID
}

// age makes the lease's last renewal d ago.
func (f *fakeLeases) age(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := metav1.NewMicroTime(time.Now().Add(-d))
	f.cur.Spec.RenewTime = &t
}

// someone is a process of this machine, this boot and this PID namespace.
func someone(id string, pid int) Identity {
	me := Self("test")
	me.ID, me.PID = id, pid
	me.Start, _ = processStart(pid)
	return me
}

func lockFor(f *fakeLeases, id Identity) *Lock {
	return &Lock{Leases: f, Self: id, Duration: lockDuration}
}

// freePID is a PID that no process of this namespace has.
func freePID(t *testing.T) int {
	for pid := 4194000; pid > 100000; pid -= 7 {
		if _, alive := processStart(pid); !alive {
			return pid
		}
	}
	t.Fatal("no free PID")
	return 0
}

func TestLockRefusesALiveHolderAndNamesIt(t *testing.T) {
	f := newFakeLeases()
	a := lockFor(f, someone("a", os.Getpid()))
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := lockFor(f, someone("b", os.Getpid()))
	err := b.Acquire(context.Background())
	if err == nil || !strings.Contains(err.Error(), "another run is deploying to this cluster: "+a.Self.String()) {
		t.Fatalf("second run: %v", err)
	}
	if f.holder() != "a" {
		t.Errorf("holder is %q", f.holder())
	}
}

// Two runs with the same hostname and the same PID in different PID
// namespaces (two containers, a dev container and its host): the holder's
// PID not existing here proves nothing, so its lock is kept until it
// misses its renewals.
func TestLockSameHostAndPIDInAnotherNamespaceIsNotTakenOver(t *testing.T) {
	f := newFakeLeases()
	pid := freePID(t)
	other := someone("in-a-container", pid)
	other.PIDNS = "pid:[4026599999]"
	if err := lockFor(f, other).Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	me := someone("here", pid)
	if err := lockFor(f, me).Acquire(context.Background()); err == nil || f.holder() != "in-a-container" {
		t.Fatalf("a live run in another PID namespace lost the lock (err %v, holder %q)", err, f.holder())
	}
	// Once it misses its renewals, it is taken over.
	f.age(lockDuration + time.Second)
	if err := lockFor(f, me).Acquire(context.Background()); err != nil || f.holder() != "here" {
		t.Fatalf("an expired lease was not taken over (err %v, holder %q)", err, f.holder())
	}
}

func TestLockOfAProcessGoneFromThisMachineIsTakenOver(t *testing.T) {
	f := newFakeLeases()
	if err := lockFor(f, someone("killed", freePID(t))).Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := lockFor(f, someone("next", os.Getpid())).Acquire(context.Background()); err != nil || f.holder() != "next" {
		t.Fatalf("err %v, holder %q", err, f.holder())
	}
	// A PID reused by another process (a different start time) is gone too.
	reused := someone("reused", os.Getpid())
	reused.Start = "1"
	f.cur = nil
	lockFor(f, reused).Acquire(context.Background())
	if err := lockFor(f, someone("after", os.Getpid())).Acquire(context.Background()); err != nil || f.holder() != "after" {
		t.Fatalf("PID reuse: err %v, holder %q", err, f.holder())
	}
}

// A holder judged gone that renews between our read and our write keeps
// the lock: the takeover carries the resourceVersion it inspected.
func TestLockTakeoverLosesToARenewal(t *testing.T) {
	f := newFakeLeases()
	old := lockFor(f, someone("old", os.Getpid()))
	if err := old.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.age(lockDuration + time.Second)
	f.before["update"] = func() {
		if err := old.Renew(context.Background()); err != nil {
			t.Errorf("renew: %v", err)
		}
	}
	err := lockFor(f, someone("new", os.Getpid())).Acquire(context.Background())
	if err == nil || f.holder() != "old" {
		t.Fatalf("took the lock from a run that had just renewed it (err %v, holder %q)", err, f.holder())
	}
}

// The holder releases between our failed create and our read: retry, and
// take it.
func TestLockRetriesWhenTheHolderReleasesMeanwhile(t *testing.T) {
	f := newFakeLeases()
	other := lockFor(f, someone("other", os.Getpid()))
	f.before["create"] = func() {
		if err := other.Acquire(context.Background()); err != nil {
			t.Error(err)
		}
		f.before["get"] = func() { other.Release() }
	}
	if err := lockFor(f, someone("me", os.Getpid())).Acquire(context.Background()); err != nil || f.holder() != "me" {
		t.Fatalf("err %v, holder %q (ops %v)", err, f.holder(), f.ops)
	}
}

func TestLockLossIsReported(t *testing.T) {
	f := newFakeLeases()
	lost := make(chan error, 1)
	a := lockFor(f, someone("a", os.Getpid()))
	a.Lost, a.period = func(err error) { lost <- err }, 5*time.Millisecond
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Keep()
	defer a.Release()
	// Another run takes the lease over (say it judged this one expired).
	f.age(lockDuration + time.Second)
	if err := lockFor(f, someone("b", os.Getpid())).Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "now held by") {
			t.Errorf("lost: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a refused renewal was not reported")
	}
}

func TestLockRenewalFailingUntilExpiryIsLoss(t *testing.T) {
	f := newFakeLeases()
	a := lockFor(f, someone("a", os.Getpid()))
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.fail["update"] = errors.New("connection refused")
	if err := a.Renew(context.Background()); err != nil {
		t.Errorf("a transient failure well before expiry is loss: %v", err)
	}
	a.now = func() time.Time { return time.Now().Add(lockDuration) }
	if err := a.Renew(context.Background()); !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("renewals failing until expiry: %v", err)
	}
}

// A run that lost its lock and then releases must not delete the new
// holder's lease.
func TestLockReleaseDeletesOnlyItsOwnLease(t *testing.T) {
	f := newFakeLeases()
	a := lockFor(f, someone("a", os.Getpid()))
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.age(lockDuration + time.Second)
	if err := lockFor(f, someone("b", os.Getpid())).Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Release()
	if f.holder() != "b" {
		t.Fatalf("releasing a lost lock deleted the new holder's lease (holder %q)", f.holder())
	}
	b := lockFor(f, someone("b2", os.Getpid()))
	f.cur = nil
	b.Acquire(context.Background())
	b.Release()
	if f.holder() != "" {
		t.Error("release left the run's own lease")
	}
}

func TestIdentityIsUniquePerProcessAndReadable(t *testing.T) {
	a, b := Self("all"), Self("all")
	if a.ID == b.ID || len(a.ID) != 32 {
		t.Errorf("IDs %q and %q", a.ID, b.ID)
	}
	if s := a.String(); !strings.Contains(s, fmt.Sprintf("pid %d running \"all\"", os.Getpid())) || !strings.Contains(s, a.ID[:12]) {
		t.Errorf("holder text %q", s)
	}
}

// A lease changed under the holder but still its own (someone labelled
// it) is renewed, not reported lost.
func TestLockRenewsALeaseTouchedBySomeoneElse(t *testing.T) {
	f := newFakeLeases()
	a := lockFor(f, someone("a", os.Getpid()))
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.rv++
	f.cur.ResourceVersion = strconv.Itoa(f.rv)
	f.cur.Labels = map[string]string{"touched": "yes"}
	f.mu.Unlock()
	if err := a.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.holder() != "a" || f.cur.Labels["touched"] != "yes" {
		t.Errorf("holder %q, labels %v", f.holder(), f.cur.Labels)
	}
}

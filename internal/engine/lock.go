package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alt-platform/orchestration/internal/ui"
	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The deploy lock is the Lease lockLease in stateNamespace. Its holder
// identity is one line for people; its annotations say, for machines, which
// process holds it: a random ID unique to that process, and the host, boot,
// PID namespace, PID and process start time that let a run on the same
// machine prove that the holder is gone.
const (
	annHolderID = "alt-platform.io/holder-id"
	annHost     = "alt-platform.io/host"
	annBoot     = "alt-platform.io/boot-id"
	annPIDNS    = "alt-platform.io/pid-namespace"
	annPID      = "alt-platform.io/pid"
	annStart    = "alt-platform.io/process-start"
)

// leaseAPI is what the lock needs of the API server: the Leases of
// stateNamespace (coordinationv1.LeaseInterface has these methods).
type leaseAPI interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordv1.Lease, error)
	Create(ctx context.Context, l *coordv1.Lease, opts metav1.CreateOptions) (*coordv1.Lease, error)
	Update(ctx context.Context, l *coordv1.Lease, opts metav1.UpdateOptions) (*coordv1.Lease, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// Identity is one process holding, or asking for, the deploy lock.
type Identity struct {
	ID    string // random, unique to the process
	User  string
	Host  string
	Boot  string // /proc/sys/kernel/random/boot_id
	PIDNS string // /proc/self/ns/pid, e.g. pid:[4026531836]
	PID   int
	Start string // the process start time, field 22 of /proc/<pid>/stat
	What  string // the command line
	Since time.Time
}

// Self is this process.
func Self(what string) Identity {
	b := make([]byte, 16)
	rand.Read(b)
	host, _ := os.Hostname()
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, _ := os.Readlink("/proc/self/ns/pid")
	start, _ := processStart(os.Getpid())
	return Identity{ID: hex.EncodeToString(b), User: os.Getenv("USER"), Host: host,
		Boot: strings.TrimSpace(string(boot)), PIDNS: ns, PID: os.Getpid(), Start: start,
		What: what, Since: time.Now().UTC()}
}

// String is the Lease's holderIdentity: who, where, what, since when, and
// the ID that makes it unique.
func (id Identity) String() string {
	short := id.ID
	if len(short) > 12 {
		short = short[:12]
	}
	return fmt.Sprintf("%s@%s pid %d running %q since %s (run %s)", id.User, id.Host, id.PID, id.What, id.Since.Format(time.RFC3339), short)
}

func (id Identity) annotations() map[string]string {
	return map[string]string{annHolderID: id.ID, annHost: id.Host, annBoot: id.Boot,
		annPIDNS: id.PIDNS, annPID: strconv.Itoa(id.PID), annStart: id.Start}
}

func identityOf(l *coordv1.Lease) Identity {
	a := l.Annotations
	pid, _ := strconv.Atoi(a[annPID])
	return Identity{ID: a[annHolderID], Host: a[annHost], Boot: a[annBoot], PIDNS: a[annPIDNS], PID: pid, Start: a[annStart]}
}

// processStart is the start time of a process in clock ticks since boot,
// or false when no such process exists in this PID namespace.
func processStart(pid int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return "", false
	}
	return f[19], true
}

// ErrLockLost is the cause of a run's cancellation when it lost the lock.
var ErrLockLost = errors.New("the deploy lock was lost")

// Lock is the deploy lock of one cluster, held by one process.
type Lock struct {
	Leases leaseAPI
	Self   Identity
	// Duration is how long a lease lasts without renewal (lockDuration);
	// it is renewed every quarter of it.
	Duration time.Duration
	// Gone reports whether the process of an identity on this machine has
	// provably ended (processGone; replaced in tests).
	Gone func(Identity) bool
	// Lost is called once, with the reason, when a renewal is refused or
	// fails until the lease would have expired.
	Lost func(error)

	mu     sync.Mutex
	held   *coordv1.Lease
	stop   chan struct{}
	done   chan struct{}
	now    func() time.Time
	period time.Duration
}

func (l *Lock) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// processGone reports whether holder is a process of this machine, this
// boot and this PID namespace that no longer runs (its PID is free, or
// another process with a later start time has it). A holder in another PID
// namespace, on another boot or on another machine is never provably gone.
func processGone(holder Identity) bool {
	self := Self("")
	if holder.ID == "" || holder.Host != self.Host || holder.Boot == "" || holder.Boot != self.Boot ||
		holder.PIDNS == "" || holder.PIDNS != self.PIDNS || holder.PID <= 0 {
		return false
	}
	start, alive := processStart(holder.PID)
	return !alive || (holder.Start != "" && start != holder.Start)
}

// Acquire takes the lock or says who holds it. A lease is taken over only
// when it has missed its renewals, or when its holder is provably gone;
// in both cases the update carries the resourceVersion that was inspected,
// so a holder that renewed in between keeps it. Races retry.
func (l *Lock) Acquire(ctx context.Context) error {
	for range 8 {
		done, err := l.try(ctx)
		if done || err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the deploy lock (Lease %s/%s) kept changing hands while this run tried to take it; try again", stateNamespace, lockLease)
}

// try makes one attempt; done=false, err=nil means a race to retry.
func (l *Lock) try(ctx context.Context) (done bool, err error) {
	cur, err := l.Leases.Get(ctx, lockLease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		got, err := l.Leases.Create(ctx, l.lease(&coordv1.Lease{}), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return l.took(got, err)
	}
	if err != nil {
		return false, fmt.Errorf("reading the deploy lock (Lease %s/%s): %w", stateNamespace, lockLease, err)
	}
	why := l.takeable(cur)
	if why == "" {
		return false, l.refusal(cur)
	}
	got, err := l.Leases.Update(ctx, l.lease(cur), metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return false, nil
	}
	if err == nil && why != "free" {
		warnTakeover(cur, why)
	}
	return l.took(got, err)
}

func (l *Lock) took(got *coordv1.Lease, err error) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("taking the deploy lock (Lease %s/%s): %w", stateNamespace, lockLease, err)
	}
	l.mu.Lock()
	l.held = got
	l.mu.Unlock()
	return true, nil
}

// takeable says why cur may be taken ("free", "expired ...", "holder
// gone ..."), or "" when a live run holds it.
func (l *Lock) takeable(cur *coordv1.Lease) string {
	if cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity == "" || cur.Spec.RenewTime == nil {
		return "free"
	}
	d := l.Duration
	if cur.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*cur.Spec.LeaseDurationSeconds) * time.Second
	}
	if age := l.clock().Sub(cur.Spec.RenewTime.Time); age > d {
		return fmt.Sprintf("its last renewal was %s ago (it lasts %s)", age.Round(time.Second), d)
	}
	gone := l.Gone
	if gone == nil {
		gone = processGone
	}
	if h := identityOf(cur); h.ID != l.Self.ID && gone(h) {
		return fmt.Sprintf("its process %d on this machine has ended", h.PID)
	}
	return ""
}

func warnTakeover(cur *coordv1.Lease, why string) {
	ui.Warn("taking over the deploy lock from %s: %s", *cur.Spec.HolderIdentity, why)
}

func (l *Lock) refusal(cur *coordv1.Lease) error {
	return fmt.Errorf("another run is deploying to this cluster: %s (lock: Lease %s/%s, renewed %s ago); wait for it to finish, or if it is gone the lock expires %s after its last renewal",
		*cur.Spec.HolderIdentity, stateNamespace, lockLease, l.clock().Sub(cur.Spec.RenewTime.Time).Round(time.Second), l.Duration)
}

// lease is base (its metadata and resourceVersion kept) held by this run.
func (l *Lock) lease(base *coordv1.Lease) *coordv1.Lease {
	out := base.DeepCopy()
	out.Name, out.Namespace = lockLease, stateNamespace
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	for k, v := range l.Self.annotations() {
		out.Annotations[k] = v
	}
	holder := l.Self.String()
	secs := int32(l.Duration / time.Second)
	now := metav1.NewMicroTime(l.clock())
	out.Spec = coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}
	return out
}

// Keep renews the lease every quarter of its duration until Release.
func (l *Lock) Keep() {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	period := l.period
	if period == 0 {
		period = l.Duration / 4
	}
	go func() {
		defer close(l.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				if err := l.Renew(context.Background()); err != nil {
					if l.Lost != nil {
						l.Lost(err)
					}
					return
				}
			}
		}
	}()
}

// Renew renews the lease once. It fails (wrapping ErrLockLost) when
// another holder has it, when it is gone, or when it cannot be renewed
// and has expired by now; a transient failure before expiry returns nil
// and the next renewal tries again.
func (l *Lock) Renew(ctx context.Context) error {
	l.mu.Lock()
	first := l.held.Spec.RenewTime.Time
	l.mu.Unlock()
	var err error
	for range 3 {
		var again bool
		if again, err = l.renewOnce(ctx); !again {
			break
		}
	}
	if errors.Is(err, ErrLockLost) {
		return err
	}
	if age := l.clock().Sub(first); err != nil && age >= l.Duration {
		return fmt.Errorf("%w: Lease %s/%s could not be renewed for %s, so another run may take it: %v", ErrLockLost, stateNamespace, lockLease, age.Round(time.Second), err)
	}
	return nil
}

// renewOnce makes one renewal; again: the lease changed under us but is
// still ours (someone touched its metadata), so try again from it.
func (l *Lock) renewOnce(ctx context.Context) (again bool, err error) {
	l.mu.Lock()
	next := l.held.DeepCopy()
	l.mu.Unlock()
	now := metav1.NewMicroTime(l.clock())
	next.Spec.RenewTime = &now
	got, err := l.Leases.Update(ctx, next, metav1.UpdateOptions{})
	if err == nil {
		l.mu.Lock()
		l.held = got
		l.mu.Unlock()
		return false, nil
	}
	if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return false, err
	}
	cur, gerr := l.Leases.Get(ctx, lockLease, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(gerr):
		return false, fmt.Errorf("%w: Lease %s/%s was deleted by someone else", ErrLockLost, stateNamespace, lockLease)
	case gerr != nil:
		return false, gerr
	case identityOf(cur).ID != l.Self.ID:
		return false, fmt.Errorf("%w: Lease %s/%s is now held by %s", ErrLockLost, stateNamespace, lockLease, holderOf(cur))
	}
	l.mu.Lock()
	l.held = cur
	l.mu.Unlock()
	return true, err
}

func holderOf(l *coordv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return "nobody"
	}
	return *l.Spec.HolderIdentity
}

// Release stops the renewals and deletes the lease if it is still this
// run's, exactly as last seen (UID and resourceVersion preconditions).
func (l *Lock) Release() {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	l.mu.Lock()
	held := l.held
	l.held = nil
	l.mu.Unlock()
	if held == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	uid, rv := held.UID, held.ResourceVersion
	l.Leases.Delete(ctx, lockLease, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
}

package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/ui"
)

// rollbackTarget picks, from a layer's verified deploys (newest first)
// and its current record, the deploy to return to: the one before the
// current verified deploy, or, when the last deploy failed (no current
// record), the last verified one. ok false: there is none.
func rollbackTarget(hist []Record, cur Record, hasCur bool) (Record, bool) {
	if !hasCur {
		if len(hist) > 0 {
			return hist[0], true
		}
		return Record{}, false
	}
	for i, r := range hist {
		if r.Time == cur.Time && r.Digest == cur.Digest {
			if i+1 < len(hist) {
				return hist[i+1], true
			}
			return Record{}, false
		}
	}
	// The current record is not in the history (recorded before history
	// was kept): the newest remembered one is older than it.
	if len(hist) > 0 {
		return hist[0], true
	}
	return Record{}, false
}

// Rollback returns a layer to its previous verified deploy: every release
// of the layer goes back to the Helm revision that deploy verified (its
// rendered objects, image references included), then the layer is
// verified as any deploy (every object Current, every Job complete,
// within ALT_LAYER_TIMEOUT) and recorded. Refused, naming what exists,
// when there is no previous verified deploy. Holds the deploy lock.
func (e *Engine) Rollback(ctx context.Context, layer string) error {
	name, err := e.FindLayer(layer)
	if err != nil {
		return err
	}
	l := e.Stack.Layer(name)
	v, err := l.View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
	if err != nil {
		return err
	}
	if _, err := e.attachToChange(ctx, profileGuard); err != nil {
		return err
	}
	defer e.Close()
	return e.rollback(ctx, v)
}

func (e *Engine) rollback(ctx context.Context, v *stack.View) error {
	name := v.Layer.Name
	hist, err := e.state.History(ctx, name)
	if err != nil {
		return err
	}
	recs, err := e.state.Records(ctx)
	if err != nil {
		return err
	}
	cur, hasCur := recs[name]
	target, ok := rollbackTarget(hist, cur, hasCur)
	if !ok {
		return refuseRollback(name, hist, cur, hasCur)
	}
	if target.Profile != "" && target.Profile != e.Cfg.Profile {
		return fmt.Errorf("rollback of %s: its previous verified deploy (%s) was of profile %s, this run is %s", name, target.Describe(), target.Profile, e.Cfg.Profile)
	}
	if len(target.Revisions) == 0 {
		return fmt.Errorf("rollback of %s: its previous verified deploy (%s) was recorded without Helm revisions (before rollback existed); nothing to return to", name, target.Describe())
	}
	ui.Info("rollback of %s to its verified deploy of %s", name, target.Describe())
	lctx, cancel := context.WithTimeout(ctx, e.budget())
	defer cancel()
	t0 := time.Now()
	res := &Result{Layer: name}
	keys := make([]string, 0, len(target.Revisions))
	for k := range target.Revisions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, r := range v.Releases {
		if _, ok := target.Revisions[r.Namespace+"/"+r.Name]; !ok {
			ui.Warn("release %s/%s did not exist at that deploy; it is left as it is", r.Namespace, r.Name)
		}
	}
	for _, key := range keys {
		ns, rel, _ := strings.Cut(key, "/")
		rev := target.Revisions[key]
		step := ui.Start("%s: helm rollback %s to revision %d", name, key, rev)
		if err := e.cmd.Run(lctx, "helm", "rollback", rel, strconv.Itoa(rev), "--namespace", ns, "--wait", "--timeout", e.budget().String()); err != nil {
			step.Fail()
			e.state.ForgetRecord(context.WithoutCancel(ctx), name)
			return fmt.Errorf("rollback of %s: helm rollback %s %d failed (the layer is half rolled back; its record is dropped, so the next deploy deploys it again): %w", name, key, rev, err)
		}
		step.Done()
	}
	res.took("rollback", t0)
	if f := e.verify(lctx, v, res); !f.ok() {
		e.state.ForgetRecord(context.WithoutCancel(ctx), name)
		return e.fail(ctx, lctx, v, f, res)
	}
	revs, err := e.revisions(ctx, v)
	if err != nil {
		return err
	}
	rec := Record{Digest: target.Digest, Profile: e.Cfg.Profile, Time: time.Now().UTC().Format(time.RFC3339),
		Inputs: target.Inputs, Revisions: revs, RolledBackTo: target.Time}
	if err := e.state.SaveRecord(ctx, name, rec); err != nil {
		return fmt.Errorf("rolled back and verified, but recording it failed: %w", err)
	}
	ui.Info("%s is back at its deploy of %s (digest %s), verified (%s); the next deploy of your files deploys them again (`mage plan` says what differs)",
		name, target.Time, target.Digest, Timings(res.Steps))
	return nil
}

// refuseRollback names what exists when there is nothing to return to.
func refuseRollback(layer string, hist []Record, cur Record, hasCur bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "rollback of %s refused: there is no previous verified deploy to return to", layer)
	switch {
	case len(hist) == 0 && !hasCur:
		b.WriteString("; none is recorded (never deployed, or taken down)")
	case len(hist) == 0:
		fmt.Fprintf(&b, "; only the current one is recorded: %s", cur.Describe())
	default:
		b.WriteString("; recorded verified deploys, newest first:")
		for i, r := range hist {
			mark := ""
			if hasCur && r.Time == cur.Time && r.Digest == cur.Digest {
				mark = " (current)"
			}
			fmt.Fprintf(&b, "\n  %d. %s%s", i+1, r.Describe(), mark)
		}
	}
	return fmt.Errorf("%s", b.String())
}

// RollbackChoices lists, for each layer, the deploy a rollback would
// return to, and fails: a rollback names its layer.
func (e *Engine) RollbackChoices(ctx context.Context) error {
	if _, err := e.Attach(ctx); err != nil {
		return err
	}
	recs, err := e.state.Records(ctx)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, name := range e.Stack.Names() {
		hist, err := e.state.History(ctx, name)
		if err != nil {
			return err
		}
		cur, hasCur := recs[name]
		now, to := "-", "nothing (refused)"
		if hasCur {
			now = cur.Describe()
		}
		if t, ok := rollbackTarget(hist, cur, hasCur); ok {
			to = t.Describe()
		}
		rows = append(rows, []string{name, now, to})
	}
	ui.Table([]string{"LAYER", "CURRENT VERIFIED DEPLOY", "ROLLBACK RETURNS TO"}, rows)
	return fmt.Errorf("rollback: name the layer, -layer=NAME")
}

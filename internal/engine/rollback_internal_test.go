package engine

import (
	"strings"
	"testing"
)

func TestRollbackTarget(t *testing.T) {
	a := Record{Time: "t1", Digest: "a"}
	b := Record{Time: "t2", Digest: "b"}
	c := Record{Time: "t3", Digest: "c"}
	for _, tt := range []struct {
		name   string
		hist   []Record
		cur    Record
		hasCur bool
		want   string // digest, "" for none
	}{
		{"the one before the current", []Record{c, b, a}, c, true, "b"},
		{"the last deploy failed: the last verified one", []Record{c, b, a}, Record{}, false, "c"},
		{"only the current", []Record{c}, c, true, ""},
		{"nothing recorded", nil, Record{}, false, ""},
		{"after a rollback, the one before it (undo)", []Record{{Time: "t4", Digest: "b"}, c, b}, Record{Time: "t4", Digest: "b"}, true, "c"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rollbackTarget(tt.hist, tt.cur, tt.hasCur)
			if (tt.want == "") == ok || got.Digest != tt.want {
				t.Errorf("target %+v ok %v, want digest %q", got, ok, tt.want)
			}
		})
	}
	err := refuseRollback("alt-operations", []Record{c}, c, true)
	if !strings.Contains(err.Error(), "no previous verified deploy") || !strings.Contains(err.Error(), "t3 digest c") {
		t.Errorf("refusal: %v", err)
	}
	err = refuseRollback("alt-operations", nil, Record{}, false)
	if !strings.Contains(err.Error(), "none is recorded") {
		t.Errorf("refusal: %v", err)
	}
}

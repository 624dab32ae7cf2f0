package check

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestLintAlone: every chart of the repository lints alone with its ci/
// cases; a chart without a case, a case the chart's schema rejects and a
// template error in the library are each named by file.
func TestLintAlone(t *testing.T) {
	helm, r := tool(t, "helm")
	ctx := context.Background()
	wantErr(t, LintAlone(ctx, r, platform(t), helm))

	noCase := platform(t)
	if err := os.RemoveAll(filepath.Join(noCase, "charts/service/ci")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, LintAlone(ctx, r, noCase, helm), "charts/service/ci: chart charts/service: no ci/*-values.yaml")

	wantErr(t, LintAlone(ctx, r, platform(t, edit{"charts/nginx/ci/many-values.yaml", "", "replicaCount: many\n"}), helm),
		"chart charts/nginx alone with charts/nginx/ci/many-values.yaml", "replicaCount")

	wantErr(t, LintAlone(ctx, r, platform(t, edit{"charts/common/templates/_names.tpl", "trunc 63", "trunc"}), helm),
		"charts/common/templates/_names.tpl:")
}

package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/alt-platform/orchestration/internal/secrets"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// writeSecrets against client-go's fake API: created where missing,
// unchanged where equal, updated where different (and named), written
// once for a "file, once" Secret; no error tells a value.
func TestWriteSecrets(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	const pw = "pw-must-not-leak-123"
	enc, err := secrets.Encrypt([]byte("db:\n  username: u\n  password: "+pw+"\ntoken:\n  token_data: first\n"), []string{id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "staging.sops.yaml")
	os.WriteFile(path, enc, 0o600)
	t.Setenv("SOPS_AGE_KEY", id.String())
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	src, err := secrets.Decrypt(path)
	if err != nil {
		t.Fatal(err)
	}
	needs := []secrets.Need{
		{Name: "db", Keys: []string{"username", "password"}, Namespaces: []string{"a", "b"}, Origin: secrets.FromFile},
		{Name: "token", Keys: []string{"token_data"}, Namespaces: []string{"b"}, Origin: secrets.FromFileOnce},
	}
	rs := &runSecrets{file: "secrets/staging.sops.yaml", src: src, needs: needs}
	api := fake.NewSimpleClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		// A stale copy in b, and a token the cluster has updated.
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "b"}, Data: map[string][]byte{"username": []byte("u"), "password": []byte("old")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: "b"}, Data: map[string][]byte{"token_data": []byte("refreshed")}},
	)
	ctx := context.Background()
	updated, c, err := writeSecrets(ctx, api, rs, needs)
	if err != nil {
		t.Fatal(err)
	}
	if c != (secretCounts{created: 1, updated: 1, kept: 1}) || len(updated) != 1 || updated[0] != "b/db" {
		t.Errorf("counts %+v updated %v, want a/db created, b/db updated, b/token kept", c, updated)
	}
	for _, ns := range []string{"a", "b"} {
		s, err := api.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil || string(s.Data["password"]) != pw || s.Annotations[annSecretSource] != rs.file {
			t.Errorf("%s/db: %v, annotations %v", ns, err, s.Annotations)
		}
	}
	if s, _ := api.CoreV1().Secrets("b").Get(ctx, "token", metav1.GetOptions{}); string(s.Data["token_data"]) != "refreshed" {
		t.Error("a file-once Secret was overwritten")
	}
	// Again: nothing written.
	if updated, c, err = writeSecrets(ctx, api, rs, needs); err != nil || c != (secretCounts{same: 2, kept: 1}) || len(updated) != 0 {
		t.Errorf("second write: %v %+v %v", err, c, updated)
	}
	// The API server's message can quote what it was sent: an error
	// names the Secret and the reason, never the message.
	api.PrependReactor("get", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "db", errors.New(pw))
	})
	_, _, err = writeSecrets(ctx, api, rs, needs)
	if err == nil || strings.Contains(err.Error(), pw) || !strings.Contains(err.Error(), "a/db") {
		t.Errorf("a refused read: %v, want an error naming a/db without any value", err)
	}
}

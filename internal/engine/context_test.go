package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// A context's kubeconfig holds that context only, with its credentials
// flattened in, in a directory of the run's own that only this user reads,
// under a file name made of the context's (an EKS ARN's ':' and '/' gone);
// Close leaves nothing behind.
func TestContextKubeconfigIsPrivateToTheRun(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("not a real CA, inlined as it is"), 0o600); err != nil {
		t.Fatal(err)
	}
	const eks = "arn:aws:eks:eu-west-1:123456789012:cluster/alt"
	kc := filepath.Join(dir, "config")
	body := `apiVersion: v1
kind: Config
current-context: other
clusters:
- name: eks
  cluster: {server: "https://eks.invalid", certificate-authority: ` + ca + `}
- name: other
  cluster: {server: "https://other.invalid"}
users:
- name: eks
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token, --cluster-name, alt]}
- name: other
  user: {token: other-token}
contexts:
- name: "` + eks + `"
  context: {cluster: eks, user: eks}
- name: other
  context: {cluster: other, user: other}
`
	if err := os.WriteFile(kc, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	t.Setenv("TMPDIR", filepath.Join(dir, "tmp"))
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}

	c := &contextCluster{name: eks}
	path, err := c.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Kubeconfig() != path {
		t.Errorf("Kubeconfig() = %q, Ensure gave %q", c.Kubeconfig(), path)
	}
	if filepath.Base(path) != "arn_aws_eks_eu-west-1_123456789012_cluster_alt.kubeconfig" {
		t.Errorf("file name %q", filepath.Base(path))
	}
	private := filepath.Dir(path)
	if !strings.HasPrefix(private, filepath.Join(dir, "tmp")+"/") {
		t.Errorf("the kubeconfig is in %s, not in a temporary directory of the run", private)
	}
	for p, want := range map[string]os.FileMode{private: 0o700, path: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode().Perm(), want, err)
		}
	}
	got, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrentContext != eks || len(got.Contexts) != 1 || len(got.Clusters) != 1 || len(got.AuthInfos) != 1 {
		t.Errorf("the kubeconfig holds more than the context: %+v", got)
	}
	if cl := got.Clusters["eks"]; cl == nil || string(cl.CertificateAuthorityData) != "not a real CA, inlined as it is" {
		t.Errorf("the CA is not flattened into the kubeconfig: %+v", cl)
	}
	if u := got.AuthInfos["eks"]; u == nil || u.Exec == nil || u.Exec.Command != "aws" {
		t.Errorf("the exec credential plugin is lost: %+v", u)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(private); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Close (%v)", private, err)
	}

	missing := &contextCluster{name: "nope"}
	if _, err := missing.Ensure(context.Background()); err == nil || !strings.Contains(err.Error(), `ALT_KUBE_CONTEXT="nope": no such context`) {
		t.Errorf("a missing context: %v", err)
	}
}

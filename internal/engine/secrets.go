package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/alt-platform/orchestration/internal/secrets"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/ui"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// annSecretSource on a Secret the engine wrote names the file it came from.
const annSecretSource = "alt-platform.io/secrets-source"

// runSecrets are a staging or prod run's Secrets: the contract's needs and
// the environment's file, decrypted in memory. Nil in dev, whose charts
// generate their own.
type runSecrets struct {
	file  string // relative to the repository
	src   *secrets.Source
	needs []secrets.Need // every need the file provides
}

// loadSecrets reads the contract and decrypts the environment's file, and
// fails naming every Secret or key the run's layers need that the file
// lacks: before any tool is built or any cluster is touched.
func (e *Engine) loadSecrets(layers []string) error {
	if e.Cfg.Profile == "dev" {
		return nil
	}
	needs, err := secrets.ReadContract(e.Repo)
	if err != nil {
		return err
	}
	var prefixes []string
	for _, name := range layers {
		if l := e.Stack.Layer(name); l != nil {
			prefixes = append(prefixes, secrets.LayerPrefix(l.File))
		}
	}
	needs = secrets.ForLayers(needs, prefixes)
	rel := secrets.File(e.Cfg.Profile)
	path := filepath.Join(e.Repo, rel)
	if len(needs) == 0 {
		e.secrets = &runSecrets{file: rel}
		return nil
	}
	src, err := secrets.Decrypt(path)
	if err != nil {
		return fmt.Errorf("ALT_PROFILE=%s takes its Secrets from %s: %w", e.Cfg.Profile, rel, err)
	}
	if lacks, _ := secrets.Compare(needs, src.Names()); len(lacks) > 0 {
		return secrets.LackError(rel, lacks)
	}
	e.secrets = &runSecrets{file: rel, src: src, needs: needs}
	ui.Info("secrets: %s decrypted in memory: %d Secrets for the layers of this run", rel, len(needs))
	return nil
}

// layerSecrets are the needs of the run's file that the layer owns.
func (e *Engine) layerSecrets(v *stack.View) []secrets.Need {
	if e.secrets == nil || e.secrets.src == nil {
		return nil
	}
	prefix := secrets.LayerPrefix(v.Layer.File)
	var mine []secrets.Need
	for _, n := range e.secrets.needs {
		if n.Layer == prefix {
			mine = append(mine, n)
		}
	}
	return mine
}

// secretCounts are what a layer's secrets step did.
type secretCounts struct{ created, updated, same, kept int }

// syncSecrets creates or updates, in every namespace the contract names,
// each Secret the layer owns, then reads every copy back and compares it
// with the file by hash. It returns the names it updated (the layer must
// be deployed again: a roles Job sets the new passwords). No value is put
// in an argument, a log line or an error.
func (e *Engine) syncSecrets(ctx context.Context, v *stack.View) ([]string, error) {
	mine := e.layerSecrets(v)
	if len(mine) == 0 {
		return nil, nil
	}
	step := ui.Start("%s: secrets from %s", v.Layer.Name, e.secrets.file)
	updated, c, err := writeSecrets(ctx, e.secretsAPI, e.secrets, mine)
	if err != nil {
		step.Fail()
		return nil, err
	}
	step.Skip(fmt.Sprintf("%d copies of %d Secrets: %d created, %d updated, %d unchanged, %d kept (written once, then the cluster's); every compared copy matches the file by hash",
		c.created+c.updated+c.same+c.kept, len(mine), c.created, c.updated, c.same, c.kept))
	return updated, nil
}

func writeSecrets(ctx context.Context, api kubernetes.Interface, rs *runSecrets, needs []secrets.Need) ([]string, secretCounts, error) {
	var c secretCounts
	var updated []string
	if api == nil {
		return nil, c, fmt.Errorf("no cluster connection to write Secrets with")
	}
	for _, n := range needs {
		want, ok := rs.src.Data(n)
		if !ok {
			return nil, c, fmt.Errorf("%s: Secret %s lacks a key the contract names", rs.file, n.Name)
		}
		wantHash := rs.src.Hash(want)
		for _, ns := range n.Namespaces {
			where := ns + "/" + n.Name
			api := api.CoreV1().Secrets(ns)
			cur, err := api.Get(ctx, n.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: ns,
					Labels:      map[string]string{"app.kubernetes.io/managed-by": "alt-platform"},
					Annotations: map[string]string{annSecretSource: rs.file}},
					Type: corev1.SecretTypeOpaque, Data: want}
				if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil {
					if apierrors.IsNotFound(err) {
						return nil, c, fmt.Errorf("creating Secret %s: namespace %s does not exist (01-foundation creates every namespace)", where, ns)
					}
					return nil, c, fmt.Errorf("creating Secret %s: %s", where, apiReason(err))
				}
				c.created++
			case err != nil:
				return nil, c, fmt.Errorf("reading Secret %s: %s", where, apiReason(err))
			case n.Origin == secrets.FromFileOnce:
				c.kept++
				continue
			case rs.src.Hash(cur.Data) == wantHash:
				c.same++
				continue
			default:
				cur.Data, cur.StringData = want, nil
				if cur.Annotations == nil {
					cur.Annotations = map[string]string{}
				}
				cur.Annotations[annSecretSource] = rs.file
				if _, err := api.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
					return nil, c, fmt.Errorf("updating Secret %s: %s", where, apiReason(err))
				}
				c.updated++
				updated = append(updated, where)
			}
			if n.Origin == secrets.FromFileOnce {
				continue
			}
			// Read back what the API server holds and compare by hash.
			got, err := api.Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return nil, c, fmt.Errorf("reading Secret %s back: %s", where, apiReason(err))
			}
			if rs.src.Hash(got.Data) != wantHash {
				return nil, c, fmt.Errorf("Secret %s differs from %s after it was written (hash %s, want %s): something else writes it", where, rs.file, rs.src.Hash(got.Data), wantHash)
			}
		}
	}
	return updated, c, nil
}

// apiReason is the API server's reason, without the object it was sent
// (which could hold a value): its status reason and, for a rejected
// object, the names of the fields at fault.
func apiReason(err error) string {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return "request failed (" + strings.SplitN(err.Error(), ":", 2)[0] + ")"
	}
	s := st.Status()
	msg := string(s.Reason)
	if s.Details != nil {
		var fields []string
		for _, c := range s.Details.Causes {
			fields = append(fields, c.Field)
		}
		if len(fields) > 0 {
			msg += " (fields " + strings.Join(fields, ", ") + ")"
		}
	}
	return fmt.Sprintf("%s, HTTP %d", msg, s.Code)
}

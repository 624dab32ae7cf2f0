package stack

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Skaffold rejects a field its schema does not know, but only when it runs:
// the first `skaffold deploy` of the layer, after the run has taken the lock
// and decided to deploy, and its message names neither the file nor the
// path of the field. unknownFields finds those fields before anything runs.
//
// It checks the objects the stack model reads (root, metadata, requires,
// build with its artifacts, tag policy and local builder, deploy.helm with
// its releases and hooks, profiles and their activation) against every
// field Skaffold v2.16.1 accepts there (schema skaffold/v4beta13, listed by
// reflecting over its latest.* types, inline structs included), so a valid
// field the model does not use (skipBuildDependencies, wait, concurrency,
// portForward, ...) passes. Objects the model does not read (deploy.kubectl,
// build.artifacts[].jib, patches, ...) are left to Skaffold.

// shape is the fields Skaffold accepts in one object, and the shapes of the
// fields whose values are checked too (a list value: each of its items).
type shape struct {
	fields []string
	sub    map[string]*shape
}

func fields(names string, sub map[string]*shape) *shape {
	return &shape{fields: strings.Fields(names), sub: sub}
}

var skaffoldShape = func() *shape {
	hostHook := fields("command dir os", nil)
	hookItem := fields("container host", map[string]*shape{"host": hostHook})
	hooks := fields("after before", map[string]*shape{"before": hookItem, "after": hookItem})
	release := fields("chartPath createNamespace dependsOn name namespace overrides packaged recreatePods remoteChart repo setFiles setValueTemplates setValues skipBuildDependencies skipTests upgradeOnChange useHelmSecrets valuesFiles version wait", nil)
	helm := fields("concurrency flags hooks releases", map[string]*shape{"releases": release, "hooks": hooks})
	deploy := fields("cloudrun docker helm kpt kubeContext kubectl logs statusCheck statusCheckDeadlineSeconds tolerateFailuresUntilDeadline", map[string]*shape{"helm": helm})
	docker := fields("addHost buildArgs cacheFrom cliFlags dockerfile network noCache pullParent secrets squash ssh target", nil)
	artifact := fields("bazel buildpacks context custom docker hooks image jib kaniko ko platforms requires runtimeType sync", map[string]*shape{"docker": docker})
	build := fields("artifacts cluster googleCloudBuild hooks insecureRegistries local platforms tagPolicy", map[string]*shape{
		"artifacts": artifact,
		"tagPolicy": fields("customTemplate dateTime envTemplate gitCommit inputDigest sha256", nil),
		"local":     fields("concurrency push tryImportMissing useBuildkit useDockerCLI", nil),
	})
	profile := fields("activation build customActions deploy manifests name patches portForward requiresAllActivations resourceSelector test verify", map[string]*shape{
		"activation": fields("command env kubeContext", nil),
		"build":      build,
		"deploy":     deploy,
	})
	return fields("apiVersion build customActions deploy kind manifests metadata portForward profiles requires resourceSelector test verify", map[string]*shape{
		"metadata": fields("annotations labels name", nil),
		"requires": fields("activeProfiles configs git googleCloudBuildRepoV2 googleCloudStorage path", nil),
		"build":    build,
		"deploy":   deploy,
		"profiles": profile,
	})
}()

// unknownFields reports every field of a Skaffold file that Skaffold would
// reject, by its path (e.g. profiles[prod].deploy.helm.releases[kratos].valueFiles).
func unknownFields(file string, b []byte) Problems {
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil // reported by readFile
	}
	var ps Problems
	walkShape(file, "", doc, skaffoldShape, &ps)
	return ps
}

func walkShape(file, path string, v any, s *shape, ps *Problems) {
	switch v := v.(type) {
	case []any:
		for i, item := range v {
			walkShape(file, fmt.Sprintf("%s[%s]", path, itemLabel(item, i)), item, s, ps)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			field := k
			if path != "" {
				field = path + "." + k
			}
			if !slices.Contains(s.fields, k) {
				msg := "unknown field; Skaffold (schema skaffold/v4beta13) rejects it"
				if near := nearest(k, s.fields); near != "" {
					msg += "; did you mean " + near + "?"
				}
				*ps = append(*ps, Problem{File: file, Field: field, Msg: msg})
				continue
			}
			if sub := s.sub[k]; sub != nil {
				walkShape(file, field, v[k], sub, ps)
			}
		}
	}
}

// itemLabel names a list item the way Validate does: by its name or image,
// else by its index.
func itemLabel(item any, i int) string {
	if m, ok := item.(map[string]any); ok {
		for _, k := range []string{"name", "image"} {
			if s, ok := m[k].(string); ok && s != "" {
				return s
			}
		}
	}
	return fmt.Sprint(i)
}

// nearest is the known field closest to a misspelt one (same letters in
// another case, or at most two edits away), or "".
func nearest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(s, k) {
			return k
		}
		if d := editDistance(strings.ToLower(s), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package stack

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// Skaffold rejects a field its schema does not know, but only when it runs:
// the first `skaffold deploy` of the layer, after the run has taken the lock
// and decided to deploy, and its message names neither the file nor the
// path of the field. unknownFields finds those fields before anything runs,
// in the whole file, against Skaffold's own published JSON schema for the
// pinned apiVersion (SchemaFile, from Skaffold's module at the pinned
// version; a test holds the copy equal to it). Objects the schema leaves
// free (buildArgs, setValueTemplates, ...) are not checked.

// SchemaVersion is the apiVersion of every Skaffold file here, and
// SchemaFile the schema Skaffold publishes for it, as Skaffold's module
// holds it (docs-v2/content/en/schemas/).
const (
	SchemaVersion = "skaffold/v4beta13"
	SchemaFile    = "docs-v2/content/en/schemas/v4beta13.json"
)

//go:embed skaffold-v4beta13.json
var SchemaJSON []byte

// jsonSchema is the part of a JSON schema that says which fields an object
// accepts.
type jsonSchema struct {
	Ref         string                 `json:"$ref"`
	Properties  map[string]*jsonSchema `json:"properties"`
	Items       *jsonSchema            `json:"items"`
	AnyOf       []*jsonSchema          `json:"anyOf"`
	OneOf       []*jsonSchema          `json:"oneOf"`
	AllOf       []*jsonSchema          `json:"allOf"`
	Definitions map[string]*jsonSchema `json:"definitions"`
}

var skaffoldSchema = sync.OnceValue(func() *jsonSchema {
	var s jsonSchema
	if err := json.Unmarshal(SchemaJSON, &s); err != nil {
		panic("the embedded Skaffold schema: " + err.Error())
	}
	return &s
})

// resolve follows a schema's $ref into the root's definitions.
func (root *jsonSchema) resolve(s *jsonSchema) *jsonSchema {
	for s != nil && s.Ref != "" {
		s = root.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
	}
	return s
}

// fields is every field an object of schema s accepts (in any of its
// alternatives), with its schema; nil when s leaves its fields free.
func (root *jsonSchema) fields(s *jsonSchema) map[string]*jsonSchema {
	s = root.resolve(s)
	if s == nil {
		return nil
	}
	var fs map[string]*jsonSchema
	add := func(k string, v *jsonSchema) {
		if fs == nil {
			fs = map[string]*jsonSchema{}
		}
		if _, ok := fs[k]; !ok {
			fs[k] = v
		}
	}
	for k, v := range s.Properties {
		add(k, v)
	}
	for _, alts := range [][]*jsonSchema{s.AnyOf, s.OneOf, s.AllOf} {
		for _, alt := range alts {
			for k, v := range root.fields(alt) {
				add(k, v)
			}
		}
	}
	return fs
}

// unknownFields reports every field of a Skaffold file that Skaffold would
// reject, by its path (e.g. profiles[prod].deploy.helm.releases[kratos].valueFiles).
func unknownFields(file string, b []byte) Problems {
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil // reported by readFile
	}
	var ps Problems
	root := skaffoldSchema()
	walkSchema(file, "", doc, root, root, &ps)
	return ps
}

func walkSchema(file, path string, v any, s, root *jsonSchema, ps *Problems) {
	s = root.resolve(s)
	if s == nil {
		return
	}
	switch v := v.(type) {
	case []any:
		for i, item := range v {
			walkSchema(file, fmt.Sprintf("%s[%s]", path, itemLabel(item, i)), item, s.Items, root, ps)
		}
	case map[string]any:
		fs := root.fields(s)
		if fs == nil {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			field := k
			if path != "" {
				field = path + "." + k
			}
			sub, ok := fs[k]
			if !ok {
				msg := "unknown field; Skaffold (schema " + SchemaVersion + ") rejects it"
				if near := nearest(k, slices.Sorted(maps.Keys(fs))); near != "" {
					msg += "; did you mean " + near + "?"
				}
				*ps = append(*ps, Problem{File: file, Where: field, Msg: msg})
				continue
			}
			walkSchema(file, field, v[k], sub, root, ps)
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

// CheckFields reports every field of one Skaffold config document that
// Skaffold would reject (nil when none); file names it in the problems.
func CheckFields(file string, b []byte) error {
	if ps := unknownFields(file, b); len(ps) > 0 {
		return ps
	}
	return nil
}

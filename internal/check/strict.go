package check

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

var (
	strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	laxDecoder    = serializer.NewCodecFactory(scheme.Scheme).UniversalDeserializer()
)

// typed is an object as its Kubernetes API type, decoded ignoring unknown
// fields (Strict reports those); nil when the kind is not built in or the
// document does not decode. Objects from Render are decoded once; the
// result is shared and must not be modified.
func typed(o *Object) runtime.Object {
	if o.decoded != nil {
		return o.decoded
	}
	return decode(o.Raw)
}

func decode(raw []byte) runtime.Object {
	obj, _, err := laxDecoder.Decode(raw, nil, nil)
	if err != nil {
		return nil
	}
	return obj
}

// Strict decodes every object strictly against the Kubernetes API types of
// the pinned client (k8s.io/api v0.34.2): unknown, duplicate or mistyped
// fields are problems naming the field. Kinds the scheme does not know
// (custom resources) are validated against the schema of a
// CustomResourceDefinition among the rendered objects; without one they are
// returned as notes ("not checked: no schema"), never passed silently. An
// apiVersion of a built-in group that Kubernetes does not serve (a removed
// beta, a typo) is a problem.
func Strict(objs []*Object) ([]Note, error) {
	var ps Problems
	var notes []Note
	crds := crdSchemas(objs)
	for _, o := range objs {
		if o.APIVersion == "" || o.Kind == "" {
			ps = append(ps, o.problem("no apiVersion or kind"))
			continue
		}
		_, gvk, err := strictDecoder.Decode(o.Raw, nil, nil)
		if err == nil || runtime.IsStrictDecodingError(err) {
			if gvk != nil && !servedByDefault(gvk.Version) {
				ps = append(ps, o.problem("Kubernetes v1.34 does not serve %s by default (alpha and beta APIs are off); use %s", o.APIVersion, servedVersions(gvk.Group, gvk.Kind)))
			}
		}
		if err == nil {
			continue
		}
		if se, ok := runtime.AsStrictDecodingError(err); ok {
			for _, e := range se.Errors() {
				ps = append(ps, o.problem("%s (Kubernetes %s API)", e, o.APIVersion))
			}
			continue
		}
		if !runtime.IsNotRegisteredError(err) {
			ps = append(ps, o.problem("does not decode as %s %s: %v", o.APIVersion, o.Kind, err))
			continue
		}
		gv, perr := schema.ParseGroupVersion(o.APIVersion)
		if perr != nil {
			ps = append(ps, o.problem("apiVersion %q: %v", o.APIVersion, perr))
			continue
		}
		if scheme.Scheme.IsGroupRegistered(gv.Group) {
			ps = append(ps, o.problem("Kubernetes v1.34 serves no %s in %s (served versions: %s)", o.Kind, o.APIVersion, servedVersions(gv.Group, o.Kind)))
			continue
		}
		if gv.Group == "apiextensions.k8s.io" || gv.Group == "apiregistration.k8s.io" {
			notes = append(notes, Note{Check: "strict", What: fmt.Sprintf("%s %s (%s)", o.APIVersion, o.Kind, o.Source),
				Why: "no schema: the pinned client's scheme has no types for this API group"})
			continue
		}
		s, ok := crds[crdKey{gv.Group, gv.Version, o.Kind}]
		if !ok {
			notes = append(notes, Note{Check: "strict", What: fmt.Sprintf("%s %s (%s)", o.APIVersion, o.Kind, o.Source),
				Why: "no schema: the CustomResourceDefinition is not among the rendered objects (it comes from a chart that was not rendered)"})
			continue
		}
		for _, e := range validateSchema(o.Doc, s) {
			ps = append(ps, o.problem("%s (CustomResourceDefinition %s)", e, s.crd))
		}
	}
	return dedupeNotes(notes), ps.Err()
}

// servedByDefault reports whether an API server serves a version of a
// built-in group without extra flags: the GA versions.
func servedByDefault(version string) bool {
	return !strings.Contains(version, "alpha") && !strings.Contains(version, "beta")
}

func servedVersions(group, kind string) string {
	var vs []string
	for gvk := range scheme.Scheme.AllKnownTypes() {
		if gvk.Group == group && gvk.Kind == kind && servedByDefault(gvk.Version) {
			vs = append(vs, gvk.GroupVersion().String())
		}
	}
	sort.Strings(vs)
	if len(vs) == 0 {
		return "none of kind " + kind
	}
	return strings.Join(vs, ", ")
}

type crdKey struct{ group, version, kind string }

type crdSchema struct {
	crd    string // name of the CRD, for messages
	schema map[string]any
}

// crdSchemas collects the openAPIV3Schema of every served version of every
// rendered CustomResourceDefinition.
func crdSchemas(objs []*Object) map[crdKey]crdSchema {
	m := map[crdKey]crdSchema{}
	for _, o := range objs {
		if o.Kind != "CustomResourceDefinition" || !strings.HasPrefix(o.APIVersion, "apiextensions.k8s.io/") {
			continue
		}
		spec, _ := o.Doc["spec"].(map[string]any)
		group, _ := spec["group"].(string)
		names, _ := spec["names"].(map[string]any)
		kind, _ := names["kind"].(string)
		versions, _ := spec["versions"].([]any)
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			name, _ := vm["name"].(string)
			if served, ok := vm["served"].(bool); ok && !served {
				continue
			}
			sch, _ := vm["schema"].(map[string]any)
			open, _ := sch["openAPIV3Schema"].(map[string]any)
			if open == nil {
				continue
			}
			m[crdKey{group, name, kind}] = crdSchema{crd: o.Name, schema: open}
		}
	}
	return m
}

// validateSchema checks a custom resource against the structural subset of
// OpenAPI v3 that CRDs use: types, properties (unknown fields fail unless
// additionalProperties or x-kubernetes-preserve-unknown-fields allow them),
// required, enum, items and x-kubernetes-int-or-string. apiVersion, kind
// and metadata are the API server's and are not checked here.
func validateSchema(doc map[string]any, s crdSchema) []string {
	var errs []string
	root := map[string]any{}
	for k, v := range doc {
		if k != "apiVersion" && k != "kind" && k != "metadata" {
			root[k] = v
		}
	}
	sch := s.schema
	if props, ok := sch["properties"].(map[string]any); ok {
		trimmed := map[string]any{}
		for k, v := range props {
			if k != "apiVersion" && k != "kind" && k != "metadata" {
				trimmed[k] = v
			}
		}
		sch = cloneWith(sch, "properties", trimmed)
		if req, ok := sch["required"].([]any); ok {
			var r []any
			for _, k := range req {
				if k != "apiVersion" && k != "kind" && k != "metadata" {
					r = append(r, k)
				}
			}
			sch = cloneWith(sch, "required", r)
		}
	}
	walkSchema("", root, sch, &errs)
	sort.Strings(errs)
	return errs
}

func cloneWith(m map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(m))
	for kk, vv := range m {
		c[kk] = vv
	}
	c[k] = v
	return c
}

func walkSchema(path string, v any, s map[string]any, errs *[]string) {
	field := path
	if field == "" {
		field = "<root>"
	}
	if b, _ := s["x-kubernetes-int-or-string"].(bool); b {
		switch v.(type) {
		case string, float64, int64, int:
			return
		}
		*errs = append(*errs, fmt.Sprintf("field %s: want an integer or a string, got %s", field, typeName(v)))
		return
	}
	if v == nil {
		if n, _ := s["nullable"].(bool); n {
			return
		}
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			*errs = append(*errs, fmt.Sprintf("field %s: %v is not one of %v", field, v, enum))
		}
	}
	preserve, _ := s["x-kubernetes-preserve-unknown-fields"].(bool)
	switch t, _ := s["type"].(string); t {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			*errs = append(*errs, fmt.Sprintf("field %s: want an object, got %s", field, typeName(v)))
			return
		}
		props, _ := s["properties"].(map[string]any)
		addl := s["additionalProperties"]
		for _, k := range sortedMapKeys(m) {
			child := join(path, k)
			if ps, ok := props[k].(map[string]any); ok {
				walkSchema(child, m[k], ps, errs)
				continue
			}
			switch a := addl.(type) {
			case map[string]any:
				walkSchema(child, m[k], a, errs)
				continue
			case bool:
				if a {
					continue
				}
			}
			if preserve {
				continue
			}
			*errs = append(*errs, fmt.Sprintf("unknown field %q", child))
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if k, _ := r.(string); k != "" {
					if _, ok := m[k]; !ok {
						*errs = append(*errs, fmt.Sprintf("field %s: required", join(path, k)))
					}
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			*errs = append(*errs, fmt.Sprintf("field %s: want an array, got %s", field, typeName(v)))
			return
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range a {
				walkSchema(fmt.Sprintf("%s[%d]", path, i), e, items, errs)
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			*errs = append(*errs, fmt.Sprintf("field %s: want a string, got %s", field, typeName(v)))
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			*errs = append(*errs, fmt.Sprintf("field %s: want an integer, got %s", field, typeName(v)))
		}
	case "number":
		if _, ok := v.(float64); !ok {
			*errs = append(*errs, fmt.Sprintf("field %s: want a number, got %s", field, typeName(v)))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			*errs = append(*errs, fmt.Sprintf("field %s: want a boolean, got %s", field, typeName(v)))
		}
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case float64:
		return fmt.Sprintf("number %v", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

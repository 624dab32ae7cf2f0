package stack

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// LayerCall is the function a Mage layer target calls with its layer's
// config name; MageGraph finds the layer of a target by this call.
const LayerCall = "deployLayer"

// Graph is the layer graph as the Mage targets encode it with mg.Deps.
type Graph struct {
	// Target maps a layer's config name to its Mage target function.
	Target map[string]string
	// Needs maps a layer to the layers its target depends on directly.
	Needs map[string][]string
	// File maps a layer to the Go file of its target, e.g.
	// magefiles/layers.go, for messages.
	File map[string]string
	// Reach maps every target (its Mage name, lower case, as on a command
	// line) that deploys anything to the layers it deploys: its own and
	// those of the targets it depends on (mg.Deps) or calls.
	Reach map[string][]string
}

// MageGraph reads the Mage target files in dir (magefiles/) and returns the
// layer graph their mg.Deps / mg.CtxDeps calls encode. The Mage targets are
// the one place the graph is written; this reads it back for checks, plans
// and diagrams.
func MageGraph(dir string) (*Graph, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	layerOf := map[string]string{} // func → layer
	deps := map[string][]string{}  // func → funcs
	calls := map[string][]string{} // func → funcs it depends on or calls
	fileOf := map[string]string{}  // func → file, e.g. magefiles/layers.go
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || fn.Recv != nil {
				continue
			}
			fileOf[fn.Name.Name] = filepath.ToSlash(filepath.Join(filepath.Base(dir), filepath.Base(f)))
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				switch fun := call.Fun.(type) {
				case *ast.SelectorExpr:
					if x, ok := fun.X.(*ast.Ident); ok && x.Name == "mg" && strings.HasSuffix(fun.Sel.Name, "Deps") {
						for _, a := range call.Args {
							if id, ok := a.(*ast.Ident); ok && id.Name != "ctx" {
								deps[fn.Name.Name] = append(deps[fn.Name.Name], id.Name)
								calls[fn.Name.Name] = append(calls[fn.Name.Name], id.Name)
							}
						}
					}
				case *ast.Ident:
					calls[fn.Name.Name] = append(calls[fn.Name.Name], fun.Name)
					if fun.Name == LayerCall && len(call.Args) == 2 {
						if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if s, err := strconv.Unquote(lit.Value); err == nil {
								layerOf[fn.Name.Name] = s
							}
						}
					}
				}
				return true
			})
		}
	}
	g := &Graph{Target: map[string]string{}, Needs: map[string][]string{}, File: map[string]string{}, Reach: map[string][]string{}}
	for fn, layer := range layerOf {
		if other, dup := g.Target[layer]; dup {
			return nil, fmt.Errorf("%s: targets %s and %s both deploy layer %q", dir, other, fn, layer)
		}
		g.Target[layer] = fn
		g.File[layer] = fileOf[fn]
		g.Needs[layer] = nil
		for _, d := range deps[fn] {
			if dl, ok := layerOf[d]; ok {
				g.Needs[layer] = append(g.Needs[layer], dl)
			}
		}
		sort.Strings(g.Needs[layer])
	}
	for fn := range fileOf {
		if ls := reach(fn, calls, layerOf); len(ls) > 0 {
			g.Reach[strings.ToLower(fn)] = ls
		}
	}
	return g, nil
}

// reach are the layers a target deploys, following its calls, sorted.
func reach(fn string, calls map[string][]string, layerOf map[string]string) []string {
	seen := map[string]bool{}
	var layers []string
	var walk func(string)
	walk = func(f string) {
		if seen[f] {
			return
		}
		seen[f] = true
		if l, ok := layerOf[f]; ok {
			layers = append(layers, l)
		}
		for _, c := range calls[f] {
			walk(c)
		}
	}
	walk(fn)
	sort.Strings(layers)
	return layers
}

// RunLayers are the layers a Mage invocation of these targets (names as on
// the command line, any case) deploys, sorted.
func (g *Graph) RunLayers(targets []string) []string {
	want := map[string]bool{}
	for _, t := range targets {
		for _, l := range g.Reach[strings.ToLower(t)] {
			want[l] = true
		}
	}
	var out []string
	for l := range want {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Layers are the graph's layers, sorted.
func (g *Graph) Layers() []string {
	var ls []string
	for l := range g.Needs {
		ls = append(ls, l)
	}
	sort.Strings(ls)
	return ls
}

// DependsOn reports whether layer a needs b, directly or through others.
func (g *Graph) DependsOn(a, b string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(l string) bool {
		for _, n := range g.Needs[l] {
			if n == b {
				return true
			}
			if !seen[n] {
				seen[n] = true
				if walk(n) {
					return true
				}
			}
		}
		return false
	}
	return walk(a)
}

// Cycle returns one dependency cycle as a path, or nil.
func (g *Graph) Cycle() []string {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(string) []string
	visit = func(l string) []string {
		state[l] = active
		path = append(path, l)
		for _, n := range g.Needs[l] {
			switch state[n] {
			case active:
				for i, p := range path {
					if p == n {
						return append(append([]string{}, path[i:]...), n)
					}
				}
			case unseen:
				if c := visit(n); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[l] = done
		return nil
	}
	for _, l := range g.Layers() {
		if state[l] == unseen {
			if c := visit(l); c != nil {
				return c
			}
		}
	}
	return nil
}

// Mermaid renders the graph as a Mermaid flowchart, edges pointing from a
// layer to the layers that need it, in the given display order.
func (g *Graph) Mermaid(order []string) string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	id := func(l string) string { return strings.ReplaceAll(l, "-", "_") }
	for _, l := range order {
		fmt.Fprintf(&b, "  %s[%s]\n", id(l), l)
	}
	for _, l := range order {
		for _, n := range g.Needs[l] {
			fmt.Fprintf(&b, "  %s --> %s\n", id(n), id(l))
		}
	}
	return b.String()
}

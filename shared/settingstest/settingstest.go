// Package settingstest finds, in the source, the settings each of Herald's
// binaries reads: the `env:"…"` tags of the struct config in
// services/<binary> and of every struct it holds, across the packages of
// this repository, plus appconf.Env when the binary reads its apps
// (appconf.ParseEnv, or process.Apps which calls it). The tests that hold
// the READMEs and the deployment files to the code share this one reading.
package settingstest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Binaries are the four programs, by their directory under services/.
var Binaries = []string{"herald", "gateway", "trigger", "presence"}

const modulePrefix = "github.com/herald-ws/herald/"

// Setting is one env-tagged struct field.
type Setting struct {
	Name       string
	Default    string // envDefault, "" when none
	HasDefault bool
	// Declared is the package directory, type and field: where its default
	// and check live.
	Declared string
}

// goPackage is the parsed non-test source of one directory.
type goPackage struct {
	structs map[string]*ast.StructType
	imports map[string]map[string]string // type name -> import name -> path (the imports of its file)
	files   []*ast.File
}

// Tree is the source of the repository at root, parsed as it is asked for.
type Tree struct {
	root string
	pkgs map[string]*goPackage
}

// NewTree reads the repository whose top folder is root.
func NewTree(root string) *Tree {
	return &Tree{root: root, pkgs: map[string]*goPackage{}}
}

func (st *Tree) pkg(tb testing.TB, dir string) *goPackage {
	tb.Helper()
	if p, ok := st.pkgs[dir]; ok {
		return p
	}
	p := &goPackage{structs: map[string]*ast.StructType{}, imports: map[string]map[string]string{}}
	fset := token.NewFileSet()
	entries, err := os.ReadDir(filepath.Join(st.root, dir))
	if err != nil {
		tb.Fatalf("reading %s: %v", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(st.root, dir, e.Name()), nil, 0)
		if err != nil {
			tb.Fatalf("parsing %s/%s: %v", dir, e.Name(), err)
		}
		p.files = append(p.files, f)
		imports := map[string]string{}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			name := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = path
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if s, ok := ts.Type.(*ast.StructType); ok {
					p.structs[ts.Name.Name] = s
					p.imports[ts.Name.Name] = imports
				}
			}
		}
	}
	st.pkgs[dir] = p
	return p
}

// Files is the parsed non-test source of the package in dir (relative to
// the root).
func (st *Tree) Files(tb testing.TB, dir string) []*ast.File {
	tb.Helper()
	return st.pkg(tb, dir).files
}

// settings collects the env-tagged fields of struct typ in dir and of the
// structs it holds.
func (st *Tree) settings(tb testing.TB, dir, typ string, out map[string]Setting) {
	tb.Helper()
	p := st.pkg(tb, dir)
	s, ok := p.structs[typ]
	if !ok {
		tb.Fatalf("no struct %s in %s", typ, dir)
	}
	for _, f := range s.Fields.List {
		if f.Tag != nil {
			tag, _ := strconv.Unquote(f.Tag.Value)
			if env, ok := reflect.StructTag(tag).Lookup("env"); ok {
				name, _, _ := strings.Cut(env, ",")
				def, hasDef := reflect.StructTag(tag).Lookup("envDefault")
				field := typ
				if len(f.Names) > 0 {
					field += "." + f.Names[0].Name
				}
				out[name] = Setting{Name: name, Default: def, HasDefault: hasDef, Declared: dir + " " + field}
				continue
			}
		}
		ft := f.Type
		if star, ok := ft.(*ast.StarExpr); ok {
			ft = star.X
		}
		switch x := ft.(type) {
		case *ast.Ident:
			if _, ok := p.structs[x.Name]; ok {
				st.settings(tb, dir, x.Name, out)
			}
		case *ast.SelectorExpr:
			pkgName, ok := x.X.(*ast.Ident)
			if !ok {
				continue
			}
			path := p.imports[typ][pkgName.Name]
			if rest, ok := strings.CutPrefix(path, modulePrefix); ok {
				st.settings(tb, rest, x.Sel.Name, out)
			}
		}
	}
}

// Reads is what binary reads, by setting name: its config and, when it
// reads its apps from the environment (appconf.ParseEnv or process.Apps),
// appconf.Env.
func (st *Tree) Reads(tb testing.TB, binary string) map[string]Setting {
	tb.Helper()
	dir := "services/" + binary
	out := map[string]Setting{}
	st.settings(tb, dir, "config", out)
	calls := false
	for _, f := range st.pkg(tb, dir).files {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "appconf" && sel.Sel.Name == "ParseEnv" || x.Name == "process" && sel.Sel.Name == "Apps") {
					calls = true
				}
			}
			return true
		})
	}
	if calls {
		st.settings(tb, "shared/appconf", "Env", out)
	}
	return out
}

package main

// The settings documentation against the code: every setting in the
// settings tables of README.md and of the service READMEs is read by each
// binary the table says uses it, every setting a binary reads is documented
// for it, and a setting read by several binaries is declared once (one
// struct field, so one default and one check of its limits) and checked
// nowhere else.
//
// What a binary reads is found in its source: the `env:"…"` tags of the
// struct `config` in services/<binary> and of every struct it holds, across
// packages of this repository, plus appconf.Env when the binary reads its
// apps (appconf.ParseEnv, or process.Apps which calls it).

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// settingBinaries are the four programs, by their directory under services/.
var settingBinaries = []string{"herald", "gateway", "trigger", "presence"}

const modulePrefix = "github.com/herald-ws/herald/"

// setting is one env-tagged struct field.
type setting struct {
	name     string
	def      string // envDefault
	hasDef   bool
	declared string // package directory, type and field: where its default and check live
}

// goPackage is the parsed non-test source of one directory.
type goPackage struct {
	structs map[string]*ast.StructType
	imports map[string]map[string]string // type name -> import name -> path (the imports of its file)
	files   []*ast.File
}

type sourceTree struct {
	root string
	pkgs map[string]*goPackage
}

func (st *sourceTree) pkg(t *testing.T, dir string) *goPackage {
	t.Helper()
	if p, ok := st.pkgs[dir]; ok {
		return p
	}
	p := &goPackage{structs: map[string]*ast.StructType{}, imports: map[string]map[string]string{}}
	fset := token.NewFileSet()
	entries, err := os.ReadDir(filepath.Join(st.root, dir))
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(st.root, dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatalf("parsing %s/%s: %v", dir, e.Name(), err)
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

// settings collects the env-tagged fields of struct typ in dir and of the
// structs it holds.
func (st *sourceTree) settings(t *testing.T, dir, typ string, out map[string]setting) {
	t.Helper()
	p := st.pkg(t, dir)
	s, ok := p.structs[typ]
	if !ok {
		t.Fatalf("no struct %s in %s", typ, dir)
	}
	for _, f := range s.Fields.List {
		if f.Tag != nil {
			tag, _ := strconv.Unquote(f.Tag.Value)
			if name, ok := reflect.StructTag(tag).Lookup("env"); ok {
				def, hasDef := reflect.StructTag(tag).Lookup("envDefault")
				field := typ
				if len(f.Names) > 0 {
					field += "." + f.Names[0].Name
				}
				out[name] = setting{name: name, def: def, hasDef: hasDef, declared: dir + " " + field}
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
				st.settings(t, dir, x.Name, out)
			}
		case *ast.SelectorExpr:
			pkgName, ok := x.X.(*ast.Ident)
			if !ok {
				continue
			}
			path := p.imports[typ][pkgName.Name]
			if rest, ok := strings.CutPrefix(path, modulePrefix); ok {
				st.settings(t, rest, x.Sel.Name, out)
			}
		}
	}
}

// reads is what binary reads: its config and, when it reads its apps from
// the environment (appconf.ParseEnv or process.Apps), appconf.Env.
func (st *sourceTree) reads(t *testing.T, binary string) map[string]setting {
	t.Helper()
	dir := "services/" + binary
	out := map[string]setting{}
	st.settings(t, dir, "config", out)
	calls := false
	for _, f := range st.pkg(t, dir).files {
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
		st.settings(t, "shared/appconf", "Env", out)
	}
	return out
}

// documented is one row of a settings table.
type documented struct {
	names  []string
	usedBy []string
	def    string
	where  string
}

var settingName = regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")

// tables reads the settings tables of a README: those whose header starts
// with "setting" or "variable". usedBy applies to tables without a "used by"
// column.
func tables(t *testing.T, path string, usedBy []string) []documented {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []documented
	var cols []string
	for i, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = nil
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if cols == nil {
			cols = cells
			continue
		}
		if strings.HasPrefix(cells[0], "---") || (cols[0] != "setting" && cols[0] != "variable") {
			continue
		}
		d := documented{usedBy: usedBy, where: path + ":" + strconv.Itoa(i+1)}
		for _, m := range settingName.FindAllStringSubmatch(cells[0], -1) {
			d.names = append(d.names, m[1])
		}
		for j, c := range cols {
			switch {
			case j >= len(cells):
			case c == "used by" && cells[j] == "all":
				d.usedBy = settingBinaries
			case c == "used by":
				d.usedBy = strings.Split(strings.ReplaceAll(cells[j], " ", ""), ",")
			case c == "default":
				d.def = cells[j]
			}
		}
		out = append(out, d)
	}
	return out
}

func TestSettingsDocumented(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	st := &sourceTree{root: root, pkgs: map[string]*goPackage{}}
	reads := map[string]map[string]setting{}
	for _, b := range settingBinaries {
		reads[b] = st.reads(t, b)
		if len(reads[b]) < 10 {
			t.Fatalf("%s reads %d settings: the source scan found too few to be right", b, len(reads[b]))
		}
	}

	// The project's tables: every binary named reads every setting of the
	// row, and every setting a binary reads has a row naming it.
	readme := tables(t, filepath.Join(root, "README.md"), settingBinaries)
	if len(readme) < 40 {
		t.Fatalf("README.md: %d settings rows: the tables were not found", len(readme))
	}
	docFor := map[string]map[string]bool{} // binary -> setting
	for _, b := range settingBinaries {
		docFor[b] = map[string]bool{}
	}
	for _, d := range readme {
		for _, b := range d.usedBy {
			if reads[b] == nil {
				t.Errorf("%s: unknown binary %q in used by", d.where, b)
				continue
			}
			for _, n := range d.names {
				docFor[b][n] = true
				if _, ok := reads[b][n]; !ok {
					t.Errorf("%s: %s is documented as used by %s, which does not read it", d.where, n, b)
				}
			}
		}
		// The documented default is the declared one where both are plain.
		if len(d.names) == 1 && !strings.ContainsAny(d.def, "` ") {
			for _, b := range d.usedBy {
				if s, ok := reads[b][d.names[0]]; ok && s.hasDef && s.def != d.def {
					t.Errorf("%s: %s documented with default %q, declared with %q (%s)", d.where, s.name, d.def, s.def, s.declared)
				}
			}
		}
	}
	for _, b := range settingBinaries {
		for n := range reads[b] {
			if !docFor[b][n] {
				t.Errorf("%s reads %s, which README.md's settings tables do not document for it", b, n)
			}
		}
	}

	// Each service's README: its settings are its binary's.
	for _, b := range []string{"gateway", "trigger", "presence"} {
		rows := tables(t, filepath.Join(root, "services", b, "README.md"), []string{b})
		if len(rows) == 0 {
			t.Errorf("services/%s/README.md has no settings table", b)
		}
		for _, d := range rows {
			for _, n := range d.names {
				if _, ok := reads[b][n]; !ok {
					t.Errorf("%s: %s is documented, but the %s binary does not read it", d.where, n, b)
				}
			}
		}
	}

	// One declaration per setting: the same field in every binary, so the
	// same default and the same check of its limits.
	decl := map[string]setting{}
	for _, b := range settingBinaries {
		for n, s := range reads[b] {
			if first, ok := decl[n]; ok {
				if first.def != s.def || first.declared != s.declared {
					t.Errorf("%s is declared twice: %s (default %q) and %s (default %q)", n, first.declared, first.def, s.declared, s.def)
				}
			}
			decl[n] = s
		}
	}
	// A binary's own Check tests no setting that a shared struct declares:
	// the limits live with the declaration, the same in every binary.
	for _, b := range settingBinaries {
		dir := "services/" + b
		for _, f := range st.pkg(t, dir).files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Name.Name != "Check" || fd.Body == nil {
					continue
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					lit, ok := n.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						return true
					}
					for _, m := range regexp.MustCompile(`[A-Z][A-Z0-9_]{3,}`).FindAllString(lit.Value, -1) {
						// NATS_URL is required or not by binary, by design
						// (herald embeds a server): a rule of the binary.
						if s, ok := decl[m]; ok && !isMain(s.declared) && m != "NATS_URL" {
							t.Errorf("%s: Check tests %s, declared in %s: a shared setting's limits belong to its declaration", dir, m, s.declared)
						}
					}
					return true
				})
			}
		}
	}
}

// isMain reports whether a declaration is a binary's own, in its main
// package (services/<binary> itself).
func isMain(declared string) bool {
	dir := declared[:strings.Index(declared, " ")]
	return slices.Contains(settingBinaries, strings.TrimPrefix(dir, "services/")) && strings.HasPrefix(dir, "services/")
}

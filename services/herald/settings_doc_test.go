package main

// The settings documentation against the code: every setting in the
// settings tables of README.md and of the service READMEs is read by each
// binary the table says uses it, every setting a binary reads is documented
// for it, and a setting read by several binaries is declared once (one
// struct field, so one default and one check of its limits) and checked
// nowhere else.
//
// What a binary reads is found in its source (shared/settingstest).

import (
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/settingstest"
)

var settingBinaries = settingstest.Binaries

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
	st := settingstest.NewTree(root)
	reads := map[string]map[string]settingstest.Setting{}
	for _, b := range settingBinaries {
		reads[b] = st.Reads(t, b)
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
				if s, ok := reads[b][d.names[0]]; ok && s.HasDefault && s.Default != d.def {
					t.Errorf("%s: %s documented with default %q, declared with %q (%s)", d.where, s.Name, d.def, s.Default, s.Declared)
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
	decl := map[string]settingstest.Setting{}
	for _, b := range settingBinaries {
		for n, s := range reads[b] {
			if first, ok := decl[n]; ok {
				if first.Default != s.Default || first.Declared != s.Declared {
					t.Errorf("%s is declared twice: %s (default %q) and %s (default %q)", n, first.Declared, first.Default, s.Declared, s.Default)
				}
			}
			decl[n] = s
		}
	}
	// A binary's own Check tests no setting that a shared struct declares:
	// the limits live with the declaration, the same in every binary.
	for _, b := range settingBinaries {
		dir := "services/" + b
		for _, f := range st.Files(t, dir) {
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
						if s, ok := decl[m]; ok && !isMain(s.Declared) && m != "NATS_URL" {
							t.Errorf("%s: Check tests %s, declared in %s: a shared setting's limits belong to its declaration", dir, m, s.Declared)
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

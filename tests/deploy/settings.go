// Package deploy checks Herald's deployment files (docker-compose.yml,
// deploy/) against the code they run: the settings the binaries read, their
// ports and commands, and the real tools that load each file.
package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// repoRoot is the repository's top folder, two levels above this package.
func repoRoot() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}

// setting is one environment variable a binary reads, from the `env:"…"`
// tag of a settings struct field.
type setting struct {
	Name     string
	Default  string // envDefault, "" when none
	Required bool
}

// settings maps each binary (herald, gateway, trigger, presence) to the
// settings it reads: the tags in services/<binary> and in shared/, which
// every binary links.
type settings map[string]map[string]setting

// readSettings parses the Go sources of services/ and shared/ (tests
// excluded) for struct tags naming environment variables.
func readSettings(root string) (settings, error) {
	shared, err := tagsUnder(filepath.Join(root, "shared"))
	if err != nil {
		return nil, err
	}
	out := settings{}
	for _, bin := range []string{"herald", "gateway", "trigger", "presence"} {
		own, err := tagsUnder(filepath.Join(root, "services", bin))
		if err != nil {
			return nil, err
		}
		m := map[string]setting{}
		for _, s := range shared {
			m[s.Name] = s
		}
		for _, s := range own {
			m[s.Name] = s
		}
		out[bin] = m
	}
	return out, nil
}

// all is every setting any binary reads.
func (s settings) all() map[string]bool {
	out := map[string]bool{}
	for _, m := range s {
		for name := range m {
			out[name] = true
		}
	}
	return out
}

func tagsUnder(dir string) ([]setting, error) {
	var out []setting
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", "testdata", "web":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok || field.Tag == nil {
				return true
			}
			raw, err := strconv.Unquote(field.Tag.Value)
			if err != nil {
				return true
			}
			tag := reflect.StructTag(raw)
			env, ok := tag.Lookup("env")
			if !ok {
				return true
			}
			name, opts, _ := strings.Cut(env, ",")
			if name == "" {
				return true
			}
			out = append(out, setting{
				Name:     name,
				Default:  tag.Get("envDefault"),
				Required: strings.Contains(","+opts+",", ",required,"),
			})
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading settings under %s: %w", dir, err)
	}
	return out, nil
}

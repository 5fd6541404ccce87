package appconf

import (
	"maps"
	"strings"
	"testing"
	"unicode/utf8"
)

func noEnv(string) (string, bool) { return "", false }

func TestParseDotenv(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"plain", "A=1\nB=two", map[string]string{"A": "1", "B": "two"}},
		{"blank lines and comments", "\n# c\n  # indented\nA=1\n\n", map[string]string{"A": "1"}},
		{"export", "export A=1\nexport\tB=2", map[string]string{"A": "1", "B": "2"}},
		{"spaces around =", "A = 1 ", map[string]string{"A": "1"}},
		{"empty", "A=\nB=''\nC=\"\"", map[string]string{"A": "", "B": "", "C": ""}},
		{"comment after bare value", "A=1 # one\nB=x#y", map[string]string{"A": "1", "B": "x#y"}},
		{"single quotes are literal", `A='a ${B} \n #x'`, map[string]string{"A": `a ${B} \n #x`}},
		{"double quotes escape", `A="a\"b\\c\nd\$e"`, map[string]string{"A": "a\"b\\c\nd$e"}},
		{"comment after quotes", `A="x y" # note`, map[string]string{"A": "x y"}},
		{"multi-line", "A=\"one\ntwo\"\nB=3", map[string]string{"A": "one\ntwo", "B": "3"}},
		{"expansion", "KEY=k1\nVITE_KEY=\"${KEY}\"\nBARE=${KEY}-x\nMISSING=${NOPE}", map[string]string{"KEY": "k1", "VITE_KEY": "k1", "BARE": "k1-x", "MISSING": ""}},
		{"CRLF", "A=1\r\nB=\"2\"\r\n", map[string]string{"A": "1", "B": "2"}},
		{"dots in names", "app.name=x", map[string]string{"app.name": "x"}},
		{"later wins", "A=1\nA=2", map[string]string{"A": "2"}},
		{"value with =", "A=b=c", map[string]string{"A": "b=c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotenv(strings.NewReader(tt.in), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// The environment is looked up before the file's own lines.
	got, err := ParseDotenv(strings.NewReader("KEY=file\nX=${KEY}"), func(k string) (string, bool) {
		if k == "KEY" {
			return "env", true
		}
		return "", false
	})
	if err != nil || got["X"] != "env" {
		t.Errorf("X = %q (%v), want the environment's value", got["X"], err)
	}
}

func TestParseDotenvErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no =", "A=1\nJUSTAWORD\n", "line 2"},
		{"bad name", "1A=x", "line 1"},
		{"unclosed double quote", "A=1\nB=\"x\n\n", "line 2"},
		{"unclosed single quote", "A='x", "line 1"},
		{"text after quote", `A="x" y`, "after the closing quote"},
		{"space in name", "MY VAR=1", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDotenv(strings.NewReader(tt.in), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

// FuzzParseDotenv: any input either parses or fails with a line number;
// parsing never panics; a value written as a single-quoted line reads back.
func FuzzParseDotenv(f *testing.F) {
	for _, s := range []string{
		"A=1", "export A='x'\n#c\nB=\"y\\n${A}\"", "A=\"", "A='", "=x", "A=${", "A=${B", "\r\n\r\n", "A=\"a\\", "export",
		"export =1", "A=#", "A=' ' #", "A=\"\\$HOME\"",
	} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, in, value string) {
		vars, err := ParseDotenv(strings.NewReader(in), noEnv)
		if err != nil {
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for k := range vars {
			if !validEnvName(k) {
				t.Fatalf("name %q accepted", k)
			}
		}
		if strings.Contains(value, "'") || !utf8.ValidString(value) {
			return
		}
		got, err := ParseDotenv(strings.NewReader("K='"+value+"'"), noEnv)
		if err != nil {
			t.Fatalf("single-quoted %q: %v", value, err)
		}
		if want := strings.ReplaceAll(value, "\r\n", "\n"); got["K"] != want {
			t.Fatalf("single-quoted %q read back as %q", value, got["K"])
		}
	})
}

package appconf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// DotenvFile is the file read from the working directory, as Laravel reads
// its .env: settings there apply unless the environment sets them too.
const DotenvFile = ".env"

// maxDotenvBytes bounds the file read: a .env is a few kilobytes.
const maxDotenvBytes = 1 << 20

// readDotenv reads DotenvFile from the working directory; a missing file is
// no error. References such as ${REVERB_APP_KEY} resolve against the
// environment first, then the file's own earlier lines.
func readDotenv() (map[string]string, error) {
	f, err := os.Open(DotenvFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", DotenvFile, err)
	}
	defer f.Close()
	vars, err := ParseDotenv(io.LimitReader(f, maxDotenvBytes), os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", DotenvFile, err)
	}
	return vars, nil
}

// ParseDotenv reads KEY=VALUE lines as Laravel's .env has them: blank lines
// and # comments are skipped, `export ` before a key is allowed, values may
// be bare (a ` #` starts a comment), 'single-quoted' (taken as written) or
// "double-quoted" (\n, \t, \", \\ and \$ escapes); quoted values may span
// lines. ${NAME} in bare and double-quoted values is replaced by lookup's
// value of NAME, else by an earlier line's, else by nothing. Errors name the
// line.
func ParseDotenv(r io.Reader, lookup func(string) (string, bool)) (map[string]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	p := dotenvParser{src: strings.ReplaceAll(string(b), "\r\n", "\n"), line: 1, vars: map[string]string{}, lookup: lookup}
	for {
		done, err := p.next()
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", p.line, err)
		}
		if done {
			return p.vars, nil
		}
	}
}

type dotenvParser struct {
	src    string
	pos    int
	line   int
	vars   map[string]string
	lookup func(string) (string, bool)
}

// next reads one line (or one multi-line quoted value).
func (p *dotenvParser) next() (done bool, err error) {
	p.skip(" \t")
	if p.pos >= len(p.src) {
		return true, nil
	}
	switch p.src[p.pos] {
	case '\n':
		p.pos++
		p.line++
		return false, nil
	case '#':
		p.skipLine()
		return false, nil
	}
	key := p.word()
	if key == "export" && p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.skip(" \t")
		key = p.word()
	}
	if !validEnvName(key) {
		return false, fmt.Errorf("%q is not a setting name", p.rest())
	}
	p.skip(" \t")
	if p.pos >= len(p.src) || p.src[p.pos] != '=' {
		return false, fmt.Errorf("%s: want %s=value", key, key)
	}
	p.pos++
	p.skip(" \t")
	var value string
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == '\'':
		value, err = p.quoted('\'')
	case p.pos < len(p.src) && p.src[p.pos] == '"':
		value, err = p.quoted('"')
	default:
		value = p.expand(p.bare())
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	p.vars[key] = value
	return false, nil
}

func (p *dotenvParser) skip(chars string) {
	for p.pos < len(p.src) && strings.IndexByte(chars, p.src[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *dotenvParser) skipLine() {
	if i := strings.IndexByte(p.src[p.pos:], '\n'); i >= 0 {
		p.pos += i
		return
	}
	p.pos = len(p.src)
}

func (p *dotenvParser) rest() string {
	end := len(p.src)
	if i := strings.IndexByte(p.src[p.pos:], '\n'); i >= 0 {
		end = p.pos + i
	}
	return p.src[p.pos:end]
}

// word reads a run of name characters.
func (p *dotenvParser) word() string {
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func isNameByte(c byte) bool {
	return c == '_' || c == '.' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

func validEnvName(s string) bool {
	return s != "" && (s[0] < '0' || s[0] > '9') && s[0] != '.'
}

// bare reads an unquoted value to the end of the line or a ` #` comment.
func (p *dotenvParser) bare() string {
	v := p.rest()
	p.pos += len(v)
	for i := 0; i < len(v); i++ {
		if v[i] == '#' && (i == 0 || v[i-1] == ' ' || v[i-1] == '\t') {
			v = v[:i]
			break
		}
	}
	return strings.TrimRight(v, " \t")
}

// quoted reads a value in quotes q, which may span lines; only spaces and
// a comment may follow it on its last line.
func (p *dotenvParser) quoted(q byte) (string, error) {
	start := p.line
	p.pos++ // the opening quote
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			return "", fmt.Errorf("quote opened on line %d is not closed", start)
		}
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == q:
			p.skip(" \t")
			if p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '#' {
				return "", fmt.Errorf("unexpected %q after the closing quote", p.rest())
			}
			p.skipLine()
			if q == '"' {
				return p.expand(b.String()), nil
			}
			return b.String(), nil
		case c == '\n':
			p.line++
			b.WriteByte(c)
		case c == '\\' && q == '"' && p.pos < len(p.src):
			e := p.src[p.pos]
			p.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '$':
				b.WriteString(`\$`) // kept from expansion; unescaped there
			case '"', '\\':
				b.WriteByte(e)
			default:
				if e == '\n' {
					p.line++
				}
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
}

// expand replaces ${NAME} and turns \$ into $.
func (p *dotenvParser) expand(v string) string {
	if !strings.Contains(v, "$") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == '$':
			b.WriteByte('$')
			i++
		case v[i] == '$' && i+1 < len(v) && v[i+1] == '{':
			end := strings.IndexByte(v[i+2:], '}')
			if end < 0 {
				b.WriteString(v[i:])
				return b.String()
			}
			name := v[i+2 : i+2+end]
			if val, ok := p.lookup(name); ok {
				b.WriteString(val)
			} else {
				b.WriteString(p.vars[name])
			}
			i += 2 + end
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

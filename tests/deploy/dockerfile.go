package deploy

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// stage is one FROM … AS name stage of a Dockerfile, with the instructions
// the tests look at.
type stage struct {
	Name        string
	Base        string
	Expose      []string
	Entrypoint  string // the JSON form, as written
	Healthcheck string // the CMD part, as written
	Lines       []string
}

// readDockerfile splits a Dockerfile into its stages. Continuation lines
// are joined; comments are dropped.
func readDockerfile(path string) (map[string]*stage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading Dockerfile: %w", err)
	}
	defer f.Close()
	stages := map[string]*stage{}
	var cur *stage
	var pending string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line = strings.TrimSpace(pending + line)
		pending = ""
		if line == "" {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			fields := strings.Fields(rest)
			cur = &stage{Base: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				cur.Name = fields[2]
				stages[cur.Name] = cur
			}
		case "EXPOSE":
			cur.Expose = append(cur.Expose, strings.Fields(rest)...)
		case "ENTRYPOINT":
			cur.Entrypoint = strings.TrimSpace(rest)
		case "HEALTHCHECK":
			if _, cmd, ok := strings.Cut(rest, "CMD "); ok {
				cur.Healthcheck = strings.TrimSpace(cmd)
			}
		}
		if cur != nil {
			cur.Lines = append(cur.Lines, line)
		}
	}
	return stages, sc.Err()
}

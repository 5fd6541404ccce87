// Package deploy checks Herald's deployment files (docker-compose.yml,
// deploy/) against the code they run: the settings the binaries read, their
// ports and commands, and the real tools that load each file.
package deploy

import (
	"path/filepath"
)

// repoRoot is the repository's top folder, two levels above this package.
func repoRoot() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}

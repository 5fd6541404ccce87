// Package web holds the browser files the gateway serves, built elsewhere
// and committed: herald-replay's browser build (npm run build in
// herald-replay/).
package web

import _ "embed" // for go:embed

// ReplayJS is herald-replay's browser build, which defines the global
// HeraldReplay.
//
//go:embed herald-replay/dist/herald-replay.js
var ReplayJS []byte

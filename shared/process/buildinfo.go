package process

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is herald_build_info: always 1, with the binary's name, the
// main module's version, the VCS revision it was built from and the Go
// version as labels, so that a dashboard shows which build runs where.
func BuildInfo(service string) prometheus.Collector {
	version, revision, goVersion := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "herald_build_info",
		Help: "Always 1; the labels say which build of which binary runs.",
		ConstLabels: prometheus.Labels{
			"service": service, "version": version, "revision": revision, "goversion": goVersion,
		},
	})
	g.Set(1)
	return g
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/process"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// describing records the name of every metric registered through it,
// including vectors that have no series yet (Gather would leave them out).
type describing struct {
	*prometheus.Registry
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describing) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return d.Registry.Register(c)
}

func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

// Every metric the Grafana dashboard in deploy/ queries is one that the
// binaries register: a renamed metric breaks this test, not a panel.
func TestDashboardMetricsExist(t *testing.T) {
	srv := natstest.Start(t)
	apps, err := appconf.NewRegistry([]appconf.App{{ID: "shop", Key: "shop-key", Secret: "0123456789abcdef0123"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := &describing{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	// As shared/process registers them in every binary.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		process.BuildInfo("herald"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	gw, err := gateway.New(ctx, gateway.Options{Apps: apps, NC: natstest.Connect(t, srv), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Shutdown(context.Background())
	if _, err := api.New(ctx, api.Options{Apps: apps, NC: natstest.Connect(t, srv), Metrics: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := service.New(service.Options{NC: natstest.Connect(t, srv), Apps: apps, Metrics: reg}); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile("../../deploy/grafana/herald-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	metricName := regexp.MustCompile(`\b(herald_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+)\b`)
	used := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, target := range p.Targets {
			for _, name := range metricName.FindAllString(target.Expr, -1) {
				used++
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(name, suffix); ok && reg.names[s] {
						base = s
					}
				}
				if !reg.names[base] {
					t.Errorf("panel %q uses %s, which no binary registers", p.Title, name)
				}
			}
		}
	}
	if used < 20 {
		t.Errorf("only %d metric references found in the dashboard", used)
	}
	if t.Failed() {
		var known []string
		for n := range reg.names {
			if strings.HasPrefix(n, "herald_") {
				known = append(known, n)
			}
		}
		slices.Sort(known)
		t.Logf("registered: %s", strings.Join(known, " "))
	}
}

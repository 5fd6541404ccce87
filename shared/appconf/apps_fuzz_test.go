package appconf

import (
	"bytes"
	"testing"
)

// FuzzAppsFile reads arbitrary apps files as the services do at start:
// whatever the file holds, reading and registering either fails with an
// error or gives apps with credentials and limits that are not negative.
func FuzzAppsFile(f *testing.F) {
	for _, s := range []string{
		`{"apps":[{"id":"shop","key":"shop-key","secret":"a-random-secret-of-16-or-more"}]}`,
		`{"apps":[{"id":"a","key":"k","secret":"s-0123456789abcdef","replay_window":"5m","activity_timeout":30,` +
			`"webhooks":[{"url":"https://x.example/h","event_types":["client_event"]}],"max_subscriptions":2}]}`,
		`{"apps":[{"id":"a","key":"k","secret":"secret"}]}`,
		`{"apps":[{"id":"a","key":"k","secret":"s-0123456789abcdef","replay_window":"-1h"}]}`,
		`{"apps":[{"id":"a","key":"k","secret":"s-0123456789abcdef","subscribe_timeout":1e300}]}`,
		`{"apps":[]}`, `{"apps":null}`, `{"apps":[{"idd":"x"}]}`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		apps, err := decodeApps(bytes.NewReader(b), "fuzz.json")
		if err != nil {
			return
		}
		reg, err := NewRegistry(apps)
		if err != nil {
			return
		}
		for _, a := range reg.All() {
			if a.ID == "" || a.Key == "" || a.Secret == "" {
				t.Fatalf("registered an app without credentials: %+v", a)
			}
			if a.MaxMessageSize <= 0 || a.MaxSubscriptions <= 0 || a.SubscribeTimeout <= 0 || a.ReplayWindow <= 0 {
				t.Fatalf("registered an app with a limit not above 0: %+v", a)
			}
			if got, ok := reg.ByKey(a.Key); !ok || got.ID != a.ID {
				t.Fatalf("app %s not found by its key", a.ID)
			}
		}
	})
}

package names

import (
	"strings"
	"testing"
)

func TestWebhookSubject(t *testing.T) {
	a := WebhookSubject("app.1", "https://example.com/hook?x=1")
	b := WebhookSubject("app.1", "https://example.com/other")
	if a == b || strings.Count(a, ".") != strings.Count(WebhookSubjects(), ".") {
		t.Fatalf("subjects %q and %q against filter %q", a, b, WebhookSubjects())
	}
	if !strings.HasPrefix(a, Prefix+".webhook.") {
		t.Fatalf("subject %q", a)
	}
}

package signing

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/url"
	"reflect"
	"testing"
	"time"
)

func TestChannelAuth(t *testing.T) {
	// The example of Pusher's authentication documentation.
	got := ChannelAuth("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", "")
	want := "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
	if got != want {
		t.Fatalf("ChannelAuth = %s, want %s", got, want)
	}
	if !VerifyChannelAuth("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", "", want) {
		t.Fatal("VerifyChannelAuth refused a good auth")
	}
	if VerifyChannelAuth("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1235", "private-foobar", "", want) {
		t.Fatal("VerifyChannelAuth accepted an auth for another socket")
	}
}

func TestVerifyRequest(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"name":"e","channel":"c","data":"{}"}`)
	good := SignRequest("POST", "/apps/1/events", nil, body, "key", "secret", now)
	withInfo := SignRequest("GET", "/apps/1/channels", url.Values{"info": {"user_count,subscription_count"}, "filter_by_prefix": {"presence-"}}, nil, "key", "secret", now)
	tests := []struct {
		name    string
		method  string
		path    string
		query   string
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"good", "POST", "/apps/1/events", good, body, now, nil},
		{"good get with info", "GET", "/apps/1/channels", withInfo, nil, now, nil},
		{"clock 599 s ahead", "POST", "/apps/1/events", good, body, now.Add(599 * time.Second), nil},
		{"expired", "POST", "/apps/1/events", good, body, now.Add(601 * time.Second), ErrExpired},
		{"future", "POST", "/apps/1/events", good, body, now.Add(-601 * time.Second), ErrExpired},
		{"body changed", "POST", "/apps/1/events", good, []byte(`{"name":"x"}`), now, ErrBodyMD5},
		{"path changed", "POST", "/apps/2/events", good, body, now, ErrSignature},
		{"method changed", "PUT", "/apps/1/events", good, body, now, ErrSignature},
		{"no signature", "POST", "/apps/1/events", "auth_key=key&auth_timestamp=1", body, now, ErrMissingParam},
		{"other key", "POST", "/apps/1/events", "auth_key=other&auth_timestamp=1&auth_signature=x", body, now, ErrKeyMismatch},
		{"bad version", "POST", "/apps/1/events", "auth_key=key&auth_timestamp=1&auth_signature=x&auth_version=2.0", body, now, ErrBadVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyRequest(tt.method, tt.path, tt.query, tt.body, "key", "secret", tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("VerifyRequest = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add("auth_key=k&auth_timestamp=1&auth_version=1.0&auth_signature=ab&body_md5=cd")
	f.Add("%zz&auth_key")
	f.Add("info=a,b&auth_key=k;x=1")
	f.Fuzz(func(t *testing.T, q string) {
		_ = VerifyRequest("POST", "/apps/1/events", q, []byte("{}"), "k", "s", time.Unix(1, 0))
		if vals, p, err := ParseRequest(q, nil); err == nil {
			if p.Key == "" || p.Signature == "" || vals == nil {
				t.Fatalf("ParseRequest(%q) accepted without key or signature", q)
			}
		}
	})
}

// ParseQuery reads a query as url.ParseQuery does: the same refusals, and
// the same values of each key in the same order.
func FuzzParseQuery(f *testing.F) {
	f.Add("auth_key=k&auth_timestamp=1&auth_version=1.0&auth_signature=ab&body_md5=cd")
	f.Add("a=1&A=2&a=3&b&=x&c=%41+b")
	f.Add("%zz&auth_key")
	f.Add("info=a,b&auth_key=k;x=1")
	f.Fuzz(func(t *testing.T, q string) {
		want, wantErr := url.ParseQuery(q)
		params, err := ParseQuery(q, nil)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("ParseQuery(%q) error %v, url.ParseQuery's %v", q, err, wantErr)
		}
		if err != nil {
			return
		}
		got := url.Values{}
		for _, p := range params {
			got[p.Key] = append(got[p.Key], p.Value)
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("ParseQuery(%q) = %v, url.ParseQuery gives %v", q, got, want)
		}
	})
}

// The string to sign of a parsed query is StringToSign of its url.Values:
// keys sorted lower-cased, the first value of a key given twice, without
// auth_signature.
func TestStringToSignOfParsedQuery(t *testing.T) {
	for _, q := range []string{
		"auth_key=k&auth_timestamp=1&auth_version=1.0&auth_signature=ab&body_md5=cd",
		"b=2&a=1&a=3&C=x%20y&auth_signature=z",
		"info=user_count,subscription_count&filter_by_prefix=presence-",
		"",
	} {
		params, err := ParseQuery(q, nil)
		if err != nil {
			t.Fatal(err)
		}
		vals, _ := url.ParseQuery(q)
		got := string(appendStringToSign(nil, "post", "/apps/1/events", params))
		if want := StringToSign("post", "/apps/1/events", vals); got != want {
			t.Errorf("%q: string to sign %q, want %q", q, got, want)
		}
	}
}

// A request without other parameters is signed as url.Values would encode
// it.
func TestSignAuthOnly(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, body := range [][]byte{nil, []byte(`{"name":"e","channel":"c","data":"{}"}`)} {
		for _, key := range []string{"key", "a key&=+/é"} {
			got := signAuthOnly("POST", "/apps/1/events", body, key, "secret", now)
			q := url.Values{"auth_key": {key}, "auth_timestamp": {"1700000000"}, "auth_version": {"1.0"}}
			if len(body) > 0 {
				sum := md5.Sum(body)
				q.Set("body_md5", hex.EncodeToString(sum[:]))
			}
			q.Set("auth_signature", HMAC("secret", StringToSign("POST", "/apps/1/events", q)))
			if want := q.Encode(); got != want {
				t.Errorf("signed %q, want %q", got, want)
			}
			if err := VerifyRequest("POST", "/apps/1/events", got, body, key, "secret", now); err != nil {
				t.Errorf("%q does not verify: %v", got, err)
			}
		}
	}
}

// FuzzChannelAuth checks the auth of a subscribe and of a sign-in, as a
// client sends them: what was signed verifies, and the same auth for any
// other socket, channel or data does not.
func FuzzChannelAuth(f *testing.F) {
	f.Add("1.2", "private-a", "", "key:0011")
	f.Add("1.2", "presence-a", `{"user_id":"1"}`, "key:")
	f.Add("1.2", "a", "", ":")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, socketID, channel, data, auth string) {
		const key, secret = "key", "a-secret-of-the-fuzzed-app"
		_ = VerifyChannelAuth(key, secret, socketID, channel, data, auth)
		_ = VerifySigninAuth(key, secret, socketID, data, auth)
		good := ChannelAuth(key, secret, socketID, channel, data)
		if !VerifyChannelAuth(key, secret, socketID, channel, data, good) {
			t.Fatalf("a signed subscribe does not verify: %q", good)
		}
		if auth != good && VerifyChannelAuth(key, secret, socketID, channel, data, auth) {
			t.Fatalf("auth %q verifies, signed is %q", auth, good)
		}
		if VerifyChannelAuth(key, secret, socketID+"9", channel, data, good) {
			t.Fatal("the auth of one socket verifies for another")
		}
		if s := SigninAuth(key, secret, socketID, data); !VerifySigninAuth(key, secret, socketID, data, s) {
			t.Fatalf("a signed sign-in does not verify: %q", s)
		}
	})
}

// Package signing holds the HMAC-SHA256 signatures of the Pusher protocol:
// channel and sign-in auth on the WebSocket, request signatures on the HTTP
// API, and webhook bodies. Every comparison is constant time.
package signing

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HMAC returns hex(HMAC-SHA256(secret, msg)).
func HMAC(secret, msg string) string { return hex.EncodeToString(mac(secret, msg)) }

func mac(secret, msg string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// equalHex reports, in constant time for a well-formed value, whether the
// hex text h (either case) encodes sum.
func equalHex(h string, sum []byte) bool {
	if len(h) != 2*len(sum) {
		return false
	}
	var buf [sha256.Size]byte
	got := buf[:len(sum)]
	if _, err := hex.Decode(got, []byte(h)); err != nil {
		return false
	}
	return hmac.Equal(got, sum)
}

func equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// ChannelAuth is the auth a client sends to subscribe to a private or
// presence channel: key:hex(HMAC(secret, socket_id:channel[:channel_data])).
func ChannelAuth(key, secret, socketID, channel, channelData string) string {
	msg := socketID + ":" + channel
	if channelData != "" {
		msg += ":" + channelData
	}
	return key + ":" + HMAC(secret, msg)
}

// VerifyChannelAuth checks a subscription's auth in constant time.
func VerifyChannelAuth(key, secret, socketID, channel, channelData, auth string) bool {
	return equal(auth, ChannelAuth(key, secret, socketID, channel, channelData))
}

// SigninAuth is the auth of pusher:signin: key:hex(HMAC(secret,
// socket_id::user::user_data)).
func SigninAuth(key, secret, socketID, userData string) string {
	return key + ":" + HMAC(secret, socketID+"::user::"+userData)
}

// VerifySigninAuth checks a sign-in's auth in constant time.
func VerifySigninAuth(key, secret, socketID, userData, auth string) bool {
	return equal(auth, SigninAuth(key, secret, socketID, userData))
}

// Webhook signs a webhook body: hex(HMAC(secret, body)).
func Webhook(secret string, body []byte) string { return HMAC(secret, string(body)) }

// Request errors. Each maps to HTTP 401 except ErrUnknownKey, which the
// caller may map to 401 or 404.
var (
	ErrMissingParam = errors.New("signing: missing auth parameter")
	ErrBadVersion   = errors.New("signing: auth_version must be 1.0")
	ErrExpired      = errors.New("signing: auth_timestamp is more than 600 s off")
	ErrBodyMD5      = errors.New("signing: body_md5 does not match the body")
	ErrSignature    = errors.New("signing: invalid signature")
	ErrKeyMismatch  = errors.New("signing: auth_key does not belong to this app")
)

// MaxSkew is how far a request's auth_timestamp may be from the server clock.
const MaxSkew = 600 * time.Second

// RequestParams are the auth parameters of a signed HTTP API request.
type RequestParams struct {
	Key       string
	Timestamp int64
	Signature string
	BodyMD5   string
}

// ParseRequest reads the auth parameters from a request's query. rawQuery is
// the URL's raw query; values are URL-decoded as the signer meant them.
func ParseRequest(rawQuery string) (url.Values, RequestParams, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, RequestParams{}, fmt.Errorf("%w: query: %v", ErrMissingParam, err)
	}
	var p RequestParams
	p.Key = q.Get("auth_key")
	p.Signature = q.Get("auth_signature")
	p.BodyMD5 = q.Get("body_md5")
	ts := q.Get("auth_timestamp")
	switch {
	case p.Key == "":
		return nil, p, fmt.Errorf("%w: auth_key", ErrMissingParam)
	case p.Signature == "":
		return nil, p, fmt.Errorf("%w: auth_signature", ErrMissingParam)
	case ts == "":
		return nil, p, fmt.Errorf("%w: auth_timestamp", ErrMissingParam)
	}
	if v := q.Get("auth_version"); v != "" && v != "1.0" {
		return nil, p, ErrBadVersion
	}
	p.Timestamp, err = strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, p, fmt.Errorf("%w: auth_timestamp is not a number", ErrMissingParam)
	}
	return q, p, nil
}

// StringToSign is METHOD\nPATH\nsorted query without auth_signature, with
// keys lower-cased and values as given.
func StringToSign(method, path string, q url.Values) string {
	// Pairs of lower-cased and original key, sorted by the first: no map
	// for the handful of parameters of a request.
	type param struct{ lower, key string }
	var buf [8]param
	params := buf[:0]
	n := len(method) + len(path) + 2
	for k, v := range q {
		lk := strings.ToLower(k)
		if lk == "auth_signature" {
			continue
		}
		params = append(params, param{lk, k})
		if len(v) > 0 {
			n += len(lk) + len(v[0]) + 2
		}
	}
	slices.SortFunc(params, func(a, b param) int { return strings.Compare(a.lower, b.lower) })
	var b strings.Builder
	b.Grow(n)
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.lower)
		b.WriteByte('=')
		b.WriteString(q.Get(p.key))
	}
	return b.String()
}

// VerifyRequest checks a signed HTTP API request: key, timestamp window,
// body_md5 (when there is a body) and signature, in constant time.
func VerifyRequest(method, path, rawQuery string, body []byte, key, secret string, now time.Time) error {
	q, p, err := ParseRequest(rawQuery)
	if err != nil {
		return err
	}
	if !equal(p.Key, key) {
		return ErrKeyMismatch
	}
	skew := now.Sub(time.Unix(p.Timestamp, 0))
	if skew > MaxSkew || skew < -MaxSkew {
		return ErrExpired
	}
	if len(body) > 0 || p.BodyMD5 != "" {
		sum := md5.Sum(body)
		if !equalHex(p.BodyMD5, sum[:]) {
			return ErrBodyMD5
		}
	}
	if !equalHex(p.Signature, mac(secret, StringToSign(method, path, q))) {
		return ErrSignature
	}
	return nil
}

// SignRequest returns the query string of a signed request, as the Pusher
// server SDKs build it. Extra query parameters go in params. Tests and the
// load generator use it.
func SignRequest(method, path string, params url.Values, body []byte, key, secret string, now time.Time) string {
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	q.Set("auth_key", key)
	q.Set("auth_timestamp", strconv.FormatInt(now.Unix(), 10))
	q.Set("auth_version", "1.0")
	if len(body) > 0 {
		sum := md5.Sum(body)
		q.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	q.Set("auth_signature", HMAC(secret, StringToSign(method, path, q)))
	return q.Encode()
}

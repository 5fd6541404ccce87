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
	"hash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HMAC returns hex(HMAC-SHA256(secret, msg)).
func HMAC(secret, msg string) string { return hex.EncodeToString(mac(secret, msg)) }

func mac(secret, msg string) []byte { return appendMAC(nil, secret, []byte(msg)) }

// macs holds a pool of keyed HMAC states per secret: keying one hashes the
// secret twice, which a request would otherwise pay each time.
var macs sync.Map // secret → *sync.Pool of *keyedMAC

type keyedMAC struct {
	hash.Hash
	buf []byte // room for the message to sign, reused
}

func macOf(secret string) (*sync.Pool, *keyedMAC) {
	pool, ok := macs.Load(secret)
	if !ok {
		pool, _ = macs.LoadOrStore(secret, &sync.Pool{New: func() any {
			return &keyedMAC{Hash: hmac.New(sha256.New, []byte(secret))}
		}})
	}
	p := pool.(*sync.Pool)
	m := p.Get().(*keyedMAC)
	m.Reset()
	return p, m
}

// appendMAC appends HMAC-SHA256(secret, msg) to dst.
func appendMAC(dst []byte, secret string, msg []byte) []byte {
	pool, m := macOf(secret)
	m.Write(msg)
	dst = m.Sum(dst)
	pool.Put(m)
	return dst
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

// Param is one query parameter, URL-decoded.
type Param struct{ Key, Value string }

// ParseQuery splits a raw query into its parameters, in order, URL-decoded
// as url.ParseQuery does (and refusing what it refuses: a semicolon, a bad
// escape), appending to buf: no map for the handful of parameters of a
// request, no copy of a value without escapes.
func ParseQuery(rawQuery string, buf []Param) ([]Param, error) {
	params := buf[:0]
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		if strings.Contains(kv, ";") {
			return nil, errors.New("invalid semicolon separator in query")
		}
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return nil, err
		}
		params = append(params, Param{k, v})
	}
	return params, nil
}

// get returns the first value of key, as url.Values.Get does.
func get(params []Param, key string) string {
	for _, p := range params {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// ParseRequest reads the auth parameters from a request's query. rawQuery is
// the URL's raw query; values are URL-decoded as the signer meant them. The
// query's parameters are appended to buf.
func ParseRequest(rawQuery string, buf []Param) ([]Param, RequestParams, error) {
	q, err := ParseQuery(rawQuery, buf)
	if err != nil {
		return nil, RequestParams{}, fmt.Errorf("%w: query: %v", ErrMissingParam, err)
	}
	var p RequestParams
	p.Key = get(q, "auth_key")
	p.Signature = get(q, "auth_signature")
	p.BodyMD5 = get(q, "body_md5")
	ts := get(q, "auth_timestamp")
	switch {
	case p.Key == "":
		return nil, p, fmt.Errorf("%w: auth_key", ErrMissingParam)
	case p.Signature == "":
		return nil, p, fmt.Errorf("%w: auth_signature", ErrMissingParam)
	case ts == "":
		return nil, p, fmt.Errorf("%w: auth_timestamp", ErrMissingParam)
	}
	if v := get(q, "auth_version"); v != "" && v != "1.0" {
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
	params := make([]Param, 0, len(q))
	for k, v := range q {
		if len(v) > 0 {
			params = append(params, Param{k, v[0]})
		} else {
			params = append(params, Param{k, ""})
		}
	}
	return string(appendStringToSign(nil, method, path, params))
}

// appendStringToSign appends StringToSign of params to dst; of a key given
// twice, the first value counts, as in url.Values. params is sorted in
// place.
func appendStringToSign(dst []byte, method, path string, params []Param) []byte {
	// By lower-cased key, then key; stable, so that the first of a key
	// given twice stays first.
	slices.SortStableFunc(params, func(a, b Param) int {
		if c := compareFold(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	for _, c := range []byte(method) {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, '\n')
	dst = append(dst, path...)
	dst = append(dst, '\n')
	first := true
	for i, p := range params {
		if (i > 0 && params[i-1].Key == p.Key) || strings.EqualFold(p.Key, "auth_signature") {
			continue
		}
		if !first {
			dst = append(dst, '&')
		}
		first = false
		for _, c := range []byte(p.Key) {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		dst = append(dst, '=')
		dst = append(dst, p.Value...)
	}
	return dst
}

// compareFold compares a and b as strings.Compare does their ASCII
// lower-cased forms.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return int(ca) - int(cb)
		}
	}
	return len(a) - len(b)
}

// VerifyRequest checks a signed HTTP API request: key, timestamp window,
// body_md5 (when there is a body) and signature, in constant time.
func VerifyRequest(method, path, rawQuery string, body []byte, key, secret string, now time.Time) error {
	var pbuf [12]Param
	q, p, err := ParseRequest(rawQuery, pbuf[:0])
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
	pool, m := macOf(secret)
	defer pool.Put(m)
	m.buf = appendStringToSign(m.buf[:0], method, path, q)
	m.Write(m.buf)
	var mbuf [sha256.Size]byte
	if !equalHex(p.Signature, m.Sum(mbuf[:0])) {
		return ErrSignature
	}
	return nil
}

// SignRequest returns the query string of a signed request, as the Pusher
// server SDKs build it. Extra query parameters go in params. Tests and the
// load generator use it.
func SignRequest(method, path string, params url.Values, body []byte, key, secret string, now time.Time) string {
	if len(params) == 0 {
		return signAuthOnly(method, path, body, key, secret, now)
	}
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

// signAuthOnly is SignRequest of a request without other parameters (every
// publish), the query written directly in url.Values.Encode's order.
func signAuthOnly(method, path string, body []byte, key, secret string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	var buf [5]Param
	params := append(buf[:0], Param{"auth_key", key}, Param{"auth_timestamp", ts}, Param{"auth_version", "1.0"})
	var md5Hex string
	if len(body) > 0 {
		sum := md5.Sum(body)
		md5Hex = hex.EncodeToString(sum[:])
		params = append(params, Param{"body_md5", md5Hex})
	}
	var sbuf [256]byte
	var mbuf [sha256.Size]byte
	sig := hex.EncodeToString(appendMAC(mbuf[:0], secret, appendStringToSign(sbuf[:0], method, path, params)))
	q := "auth_key=" + url.QueryEscape(key) + "&auth_signature=" + sig + "&auth_timestamp=" + ts + "&auth_version=1.0"
	if md5Hex != "" {
		q += "&body_md5=" + md5Hex
	}
	return q
}

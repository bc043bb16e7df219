// Command gorilla-vectors drives the real gorilla/securecookie and gorilla/sessions (Debian's
// packages) to produce the interoperability vectors of fastsession's gorilla compatibility,
// and to decode cookies that fastsession wrote.
//
//	gorilla-vectors            writes the vectors as JSON lines on stdout
//	gorilla-vectors -decode    reads decode requests (JSON lines) on stdin and answers each
//	                           with one JSON line: {"value": ...} or {"error": ..., "class": ...}
//
// Determinism comes without changing the library: crypto/rand.Reader is replaced by a counter
// before each encode (fixed IVs and session ids), and the codec's unexported clock is pinned
// through reflection. Gob output of a map with two or more entries follows Go's random map
// order, so those vectors say "deterministic": false and are compared by value.
package main

import (
	"bufio"
	"crypto/aes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// Person is the registered struct of the gob vectors ("main.Person" on the wire).
type Person struct {
	Name  string
	Age   int
	Admin bool
}

func init() {
	gob.Register(Person{})
	gob.Register([]interface{}{})
	gob.Register(map[interface{}]interface{}{})
}

const (
	now      = int64(1700000000)
	hashKey  = "0123456789abcdef0123456789abcdef"
	hashKey2 = "fedcba9876543210fedcba9876543210"
	aes128   = "fedcba9876543210"
	aes192   = "fedcba9876543210fedcba98"
	aes256   = "fedcba9876543210fedcba9876543210"
)

// counter is a deterministic stand-in for crypto/rand.Reader.
type counter struct{ next byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.next
		c.next++
	}
	return len(p), nil
}

func resetRandom() { rand.Reader = &counter{} }

// pinClock sets the codec's unexported timeFunc, which the library keeps for its own tests.
func pinClock(s *securecookie.SecureCookie, t int64) {
	field := reflect.ValueOf(s).Elem().FieldByName("timeFunc")
	reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem().
		Set(reflect.ValueOf(func() int64 { return t }))
}

// ---- typed values: how a Go value is written in the vectors ----
//
// {"string": s} {"bool": b} {"int": n} ({"int8"...} {"uint64"...}: the Go type is the key)
// {"float64": x} {"float32": x} {"bytes": base64} {"list": [...]} ([]interface{})
// {"map": [[k, v], ...]} (map[interface{}]interface{}, entries sorted by their JSON text)
// {"object": [[k, v], ...]} (map[string]interface{}, for the JSON serializer)
// {"struct": "main.Person", "fields": [["Name", v], ...]} {"nil": null}

type desc = map[string]interface{}

func toGo(d interface{}) interface{} {
	m, ok := d.(map[string]interface{})
	if !ok || len(m) == 0 {
		panic(fmt.Sprintf("bad value description %v", d))
	}
	if name, ok := m["struct"]; ok {
		if name != "main.Person" {
			panic("only main.Person is registered")
		}
		p := Person{}
		for _, f := range m["fields"].([]interface{}) {
			pair := f.([]interface{})
			v := toGo(pair[1])
			reflect.ValueOf(&p).Elem().FieldByName(pair[0].(string)).Set(reflect.ValueOf(v))
		}
		return p
	}
	for k, v := range m {
		switch k {
		case "nil":
			return nil
		case "string":
			return v.(string)
		case "bool":
			return v.(bool)
		case "bytes":
			b, err := base64.StdEncoding.DecodeString(v.(string))
			must(err)
			return b
		case "float64":
			return float(v)
		case "float32":
			return float32(float(v))
		case "int", "int8", "int16", "int32", "int64":
			n, err := strconv.ParseInt(v.(json.Number).String(), 10, 64)
			must(err)
			return convertInt(k, n)
		case "uint", "uint8", "uint16", "uint32", "uint64":
			n, err := strconv.ParseUint(v.(json.Number).String(), 10, 64)
			must(err)
			return convertUint(k, n)
		case "list":
			out := []interface{}{}
			for _, e := range v.([]interface{}) {
				out = append(out, toGo(e))
			}
			return out
		case "map":
			out := map[interface{}]interface{}{}
			for _, e := range v.([]interface{}) {
				pair := e.([]interface{})
				out[toGo(pair[0])] = toGo(pair[1])
			}
			return out
		case "object":
			out := map[string]interface{}{}
			for _, e := range v.([]interface{}) {
				pair := e.([]interface{})
				out[pair[0].(string)] = toGo(pair[1])
			}
			return out
		}
	}
	panic(fmt.Sprintf("unknown value description %v", d))
}

func float(v interface{}) float64 {
	if n, ok := v.(json.Number); ok {
		f, err := strconv.ParseFloat(n.String(), 64)
		must(err)
		return f
	}
	if text, ok := v.(string); ok {
		// JSON has no NaN or infinities: the vectors spell them as Go parses them.
		f, err := strconv.ParseFloat(text, 64)
		must(err)
		return f
	}
	return v.(float64)
}

func convertInt(kind string, n int64) interface{} {
	switch kind {
	case "int":
		return int(n)
	case "int8":
		return int8(n)
	case "int16":
		return int16(n)
	case "int32":
		return int32(n)
	}
	return n
}

func convertUint(kind string, n uint64) interface{} {
	switch kind {
	case "uint":
		return uint(n)
	case "uint8":
		return uint8(n)
	case "uint16":
		return uint16(n)
	case "uint32":
		return uint32(n)
	}
	return n
}

func fromGo(v interface{}) interface{} {
	switch x := v.(type) {
	case nil:
		return desc{"nil": nil}
	case string:
		return desc{"string": x}
	case bool:
		return desc{"bool": x}
	case []byte:
		return desc{"bytes": base64.StdEncoding.EncodeToString(x)}
	case float64:
		return desc{"float64": x}
	case float32:
		return desc{"float32": float64(x)}
	case int, int8, int16, int32, int64:
		return desc{reflect.TypeOf(v).Name(): reflect.ValueOf(v).Int()}
	case uint, uint8, uint16, uint32, uint64:
		return desc{reflect.TypeOf(v).Name(): reflect.ValueOf(v).Uint()}
	case []interface{}:
		out := []interface{}{}
		for _, e := range x {
			out = append(out, fromGo(e))
		}
		return desc{"list": out}
	case map[interface{}]interface{}:
		return desc{"map": sortedPairs(x)}
	case map[string]interface{}:
		m := map[interface{}]interface{}{}
		for k, e := range x {
			m[k] = e
		}
		pairs := sortedPairs(m)
		for _, p := range pairs {
			p.([]interface{})[0] = p.([]interface{})[0].(desc)["string"]
		}
		return desc{"object": pairs}
	case Person:
		return desc{"struct": "main.Person", "fields": []interface{}{
			[]interface{}{"Name", fromGo(x.Name)},
			[]interface{}{"Age", fromGo(x.Age)},
			[]interface{}{"Admin", fromGo(x.Admin)},
		}}
	}
	panic(fmt.Sprintf("no description for %T", v))
}

func sortedPairs(m map[interface{}]interface{}) []interface{} {
	pairs := []interface{}{}
	for k, v := range m {
		pairs = append(pairs, []interface{}{fromGo(k), fromGo(v)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		return jsonText(pairs[i].([]interface{})[0]) < jsonText(pairs[j].([]interface{})[0])
	})
	return pairs
}

func jsonText(v interface{}) string {
	b, err := json.Marshal(v)
	must(err)
	return string(b)
}

func parseDesc(text string) interface{} {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var d interface{}
	must(dec.Decode(&d))
	return d
}

// ---- codecs ----

type codecSpec struct {
	Serializer string `json:"serializer"` // "gob" (default), "json", "nop"
	HashKey    string `json:"hash_key"`   // text; "" = nil
	BlockKey   string `json:"block_key"`  // text; "" = none
	MaxAge     *int   `json:"max_age,omitempty"`
	MinAge     int    `json:"min_age,omitempty"`
	MaxLength  *int   `json:"max_length,omitempty"`
	Now        int64  `json:"now"`
}

func keyBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func (c codecSpec) build() *securecookie.SecureCookie {
	s := securecookie.New(keyBytes(c.HashKey), keyBytes(c.BlockKey))
	switch c.Serializer {
	case "json":
		s.SetSerializer(securecookie.JSONEncoder{})
	case "nop":
		s.SetSerializer(securecookie.NopEncoder{})
	}
	if c.MaxAge != nil {
		s.MaxAge(*c.MaxAge)
	}
	if c.MinAge != 0 {
		s.MinAge(c.MinAge)
	}
	if c.MaxLength != nil {
		s.MaxLength(*c.MaxLength)
	}
	pinClock(s, c.Now)
	return s
}

func errorClass(err error) string {
	if e, ok := err.(securecookie.Error); ok {
		switch {
		case e.IsUsage():
			return "usage"
		case e.IsDecode():
			return "decode"
		case e.IsInternal():
			return "internal"
		}
	}
	return "none"
}

// ---- the vectors ----

type out struct{ enc *json.Encoder }

func (o out) emit(v map[string]interface{}) { must(o.enc.Encode(v)) }

func intp(n int) *int { return &n }

func main() {
	decode := flag.Bool("decode", false, "decode requests from stdin")
	bench := flag.Bool("bench", false, "time the real library on the work of benches/benches/gorilla.rs")
	roundtrip := flag.Bool("roundtrip", false, "write random sessions for the Rust side (roundtrip.go)")
	roundtripCheck := flag.Bool("roundtrip-check", false, "check the sessions the Rust side saved (roundtrip.go)")
	seed := flag.Int64("seed", 1, "-roundtrip: the random sessions' seed")
	count := flag.Int("count", 60, "-roundtrip: how many sessions")
	dir := flag.String("dir", "", "-roundtrip: the FilesystemStore directory")
	flag.Parse()
	if *roundtrip || *roundtripCheck {
		os.Exit(roundTrip(*roundtripCheck, *seed, *count, *dir))
	}
	if *decode {
		decodeRequests()
		return
	}
	if *bench {
		benchmarks()
		return
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	o := out{enc}
	encodeVectors(o)
	errorVectors(o)
	rotationVectors(o)
	storeVectors(o)
}

func encodeOne(o out, id string, spec codecSpec, value interface{}, deterministic bool) string {
	s := spec.build()
	resetRandom()
	v := toGo(value)
	var input interface{} = v
	if spec.Serializer == "nop" {
		// NopEncoder encrypts the caller's slice in place: hand it a copy.
		input = append([]byte(nil), v.([]byte)...)
	}
	cookie, err := s.Encode("session", input)
	if err != nil {
		o.emit(map[string]interface{}{"kind": "encode_error", "id": id, "codec": spec, "cookie_name": "session",
			"value": value, "error": err.Error(), "class": errorClass(err)})
		return ""
	}
	var payload []byte
	if spec.Serializer != "nop" {
		payload, err = serializerOf(spec).Serialize(v)
		must(err)
	} else {
		payload = v.([]byte)
	}
	// Go decodes its own output; it cannot always (an empty encrypted value).
	var back interface{}
	if spec.Serializer == "nop" {
		var b []byte
		err = s.Decode("session", cookie, &b)
		back = b
	} else {
		target := newTarget(v)
		err = s.Decode("session", cookie, target)
		back = reflect.ValueOf(target).Elem().Interface()
	}
	vector := map[string]interface{}{
		"kind": "encode", "id": id, "codec": spec, "cookie_name": "session", "value": value,
		"payload_hex": hex.EncodeToString(payload), "iv_hex": ivHex(spec),
		"cookie": cookie, "deterministic": deterministic, "decoded": fromGo(back),
	}
	if err != nil {
		vector["decoded"] = nil
		vector["decode_error"] = err.Error()
		vector["decode_class"] = errorClass(err)
	}
	o.emit(vector)
	return cookie
}

func ivHex(spec codecSpec) string {
	if spec.BlockKey == "" {
		return ""
	}
	return hex.EncodeToString([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
}

func serializerOf(spec codecSpec) securecookie.Serializer {
	if spec.Serializer == "json" {
		return securecookie.JSONEncoder{}
	}
	return securecookie.GobEncoder{}
}

// newTarget is a pointer to decode v's kind into: gob needs the concrete type, except for
// interface-typed maps and lists.
func newTarget(v interface{}) interface{} {
	if v == nil {
		var x interface{}
		return &x
	}
	return reflect.New(reflect.TypeOf(v)).Interface()
}

func encodeVectors(o out) {
	keys := []struct{ name, block string }{{"plain", ""}, {"aes128", aes128}, {"aes192", aes192}, {"aes256", aes256}}
	for _, k := range keys {
		base := codecSpec{HashKey: hashKey, BlockKey: k.block, Now: now}
		js := base
		js.Serializer = "json"
		for _, v := range []struct {
			id   string
			desc string
		}{
			{"string", `{"string": "hello world"}`},
			{"html", `{"string": "<a href=\"x\">&amp;</a>"}`},
			{"separators", `{"string": "line\u2028para\u2029"}`},
			{"controls", `{"string": "\u0000\u0001\t\n\r\u001f\u007f\"\\"}`},
			{"unicode", `{"string": "grüße 日本 🎉"}`},
			{"object", `{"object": [["b", {"int": 2}], ["a", {"string": "x"}], ["<", {"bool": true}]]}`},
			{"floats", `{"list": [{"float64": 0.1}, {"float64": 1e-7}, {"float64": 1e21}, {"float64": 123456789}, {"float64": 1.5e300}, {"float64": -2.5}, {"float64": 100}, {"float64": 1e20}, {"float64": 0.000001}]}`},
			{"ints", `{"list": [{"int": 0}, {"int": -1}, {"int64": 9007199254740993}, {"uint64": 18446744073709551615}]}`},
			{"bytes", `{"bytes": "AAEC/w=="}`},
			{"struct", `{"struct": "main.Person", "fields": [["Name", {"string": "Ada"}], ["Age", {"int": 36}], ["Admin", {"bool": true}]]}`},
			{"null", `{"nil": null}`},
			{"nested", `{"object": [["list", {"list": [{"string": "a"}, {"object": [["k", {"float64": 1.25}]]}]}]]}`},
		} {
			encodeOne(o, "json_"+v.id+"_"+k.name, js, parseDesc(v.desc), true)
		}
		for _, v := range []struct {
			id   string
			desc string
			det  bool
		}{
			{"string", `{"string": "hello world"}`, true},
			{"int", `{"int": 42}`, true},
			{"negative", `{"int": -300}`, true},
			{"uint", `{"uint64": 18446744073709551615}`, true},
			{"float", `{"float64": 3.25}`, true},
			{"bool", `{"bool": true}`, true},
			{"bytes", `{"bytes": "AAEC/w=="}`, true},
			{"map_one", `{"map": [[{"string": "foo"}, {"string": "bar"}]]}`, true},
			{"map_flash", `{"map": [[{"string": "_flash"}, {"list": [{"string": "saved!"}, {"int": 7}]}]]}`, true},
			{"map_types", `{"map": [[{"string": "s"}, {"string": "x"}], [{"string": "i"}, {"int": -5}], [{"string": "u8"}, {"uint8": 200}], [{"string": "i16"}, {"int16": -1234}], [{"string": "u32"}, {"uint32": 70000}], [{"string": "f32"}, {"float32": 1.5}], [{"string": "f"}, {"float64": 0.1}], [{"string": "b"}, {"bool": false}], [{"string": "raw"}, {"bytes": "3q2+7w=="}], [{"int": 1}, {"string": "int key"}]]}`, false},
			{"map_nested", `{"map": [[{"string": "inner"}, {"map": [[{"string": "k"}, {"list": [{"int": 1}, {"string": "two"}]}]]}]]}`, true},
			{"map_struct", `{"map": [[{"string": "user"}, {"struct": "main.Person", "fields": [["Name", {"string": "Ada"}], ["Age", {"int": 36}], ["Admin", {"bool": false}]]}]]}`, true},
			{"list", `{"list": [{"string": "a"}, {"int": 1}, {"bool": true}]}`, true},
		} {
			encodeOne(o, "gob_"+v.id+"_"+k.name, base, parseDesc(v.desc), v.det)
		}
		nop := base
		nop.Serializer = "nop"
		encodeOne(o, "nop_bytes_"+k.name, nop, parseDesc(`{"bytes": "aGVsbG8gbm9wIGVuY29kZXI="}`), true)
	}
	long := codecSpec{HashKey: "a 64-byte hash key: securecookie recommends 32 or 64 random bytes", Now: now, Serializer: "json"}
	encodeOne(o, "json_string_hash64", long, parseDesc(`{"string": "hello world"}`), true)
	// JSON cannot hold map[interface{}]interface{}: the reason gorilla stores are gob-only.
	encodeOne(o, "err_json_unsupported", codecSpec{HashKey: hashKey, Serializer: "json", Now: now},
		parseDesc(`{"map": [[{"string": "a"}, {"int": 1}]]}`), true)
	encodeOne(o, "err_json_nan", codecSpec{HashKey: hashKey, Serializer: "json", Now: now},
		desc{"float64": "NaN"}, true)
	encodeOne(o, "err_too_long_encode", codecSpec{HashKey: hashKey, Serializer: "json", Now: now, MaxLength: intp(64)},
		parseDesc(`{"string": "this value is far too long for a 64-byte maximum length"}`), true)
	encodeOne(o, "err_hash_key_nil", codecSpec{HashKey: "", Serializer: "json", Now: now},
		parseDesc(`{"string": "x"}`), true)
	encodeOne(o, "err_block_key_size", codecSpec{HashKey: hashKey, BlockKey: "short", Serializer: "json", Now: now},
		parseDesc(`{"string": "x"}`), true)
	encodeOne(o, "nop_empty_aes128", codecSpec{HashKey: hashKey, BlockKey: aes128, Serializer: "nop", Now: now},
		parseDesc(`{"bytes": ""}`), true)
}

// forge signs arbitrary parts with hashKey, for decode errors past the MAC check.
func forge(name, ts, value string) string {
	mac := hmac.New(sha256.New, []byte(hashKey))
	mac.Write([]byte(name + "|" + ts + "|" + value))
	raw := append([]byte(ts+"|"+value+"|"), mac.Sum(nil)...)
	return base64.URLEncoding.EncodeToString(raw)
}

func decodeError(o out, id string, spec codecSpec, name, cookie string) {
	s := spec.build()
	var dst interface{}
	var err error
	if spec.Serializer == "nop" {
		var wrong string
		err = s.Decode(name, cookie, &wrong)
	} else {
		err = s.Decode(name, cookie, &dst)
	}
	if err == nil {
		panic("decode error vector " + id + " decoded")
	}
	o.emit(map[string]interface{}{"kind": "decode_error", "id": id, "codec": spec, "cookie_name": name,
		"cookie": cookie, "error": err.Error(), "class": errorClass(err)})
}

func errorVectors(o out) {
	js := codecSpec{HashKey: hashKey, Serializer: "json", Now: now}
	s := js.build()
	good, err := s.Encode("session", "hello world")
	must(err)
	raw, err := base64.URLEncoding.DecodeString(good)
	must(err)
	tampered := append([]byte(nil), raw...)
	tampered[len(tampered)-1] ^= 1
	later := js
	later.Now = now + 86400*30 + 1
	soon := js
	soon.MinAge = 60
	short := js
	short.MaxLength = intp(40)
	aes := codecSpec{HashKey: hashKey, BlockKey: aes128, Serializer: "json", Now: now}
	gobSpec := codecSpec{HashKey: hashKey, Now: now}
	for _, c := range []struct {
		id, name, cookie string
		spec             codecSpec
	}{
		{"err_mac_tampered", "session", base64.URLEncoding.EncodeToString(tampered), js},
		{"err_mac_wrong_name", "other", good, js},
		{"err_mac_wrong_key", "session", good, codecSpec{HashKey: hashKey2, Serializer: "json", Now: now}},
		{"err_two_parts", "session", base64.URLEncoding.EncodeToString([]byte("1700000000|abc")), js},
		{"err_base64", "session", "not*base64", js},
		{"err_base64_unpadded", "session", strings.TrimRight(good, "="), js},
		{"err_too_long_decode", "session", good, short},
		{"err_expired", "session", good, later},
		{"err_too_new", "session", good, soon},
		{"err_invalid_timestamp", "session", forge("session", "17e8", base64.URLEncoding.EncodeToString([]byte("\"x\"\n"))), js},
		{"err_inner_base64", "session", forge("session", "1700000000", "%%%"), js},
		{"err_decrypt_short", "session", forge("session", "1700000000", base64.URLEncoding.EncodeToString(make([]byte, 16))), aes},
		{"err_json_syntax", "session", forge("session", "1700000000", base64.URLEncoding.EncodeToString([]byte("{\"a\":"))), js},
		{"err_gob_garbage", "session", forge("session", "1700000000", base64.URLEncoding.EncodeToString([]byte{0x03, 0x04, 0x00})), gobSpec},
		{"err_gob_truncated", "session", forge("session", "1700000000", base64.URLEncoding.EncodeToString([]byte{0x0e, 0xff, 0x83, 0x04})), gobSpec},
		{"err_nop_wrong_target", "session", forge("session", "1700000000", base64.URLEncoding.EncodeToString([]byte("x"))), codecSpec{HashKey: hashKey, Serializer: "nop", Now: now}},
	} {
		decodeError(o, c.id, c.spec, c.name, c.cookie)
	}
	// Still valid at exactly max age, and a timestamp from the future is accepted.
	edge := js
	edge.Now = now + 86400*30
	var v string
	must(edge.build().Decode("session", good, &v))
	o.emit(map[string]interface{}{"kind": "decode", "id": "ok_at_max_age", "codec": edge, "cookie_name": "session",
		"cookie": good, "decoded": fromGo(v)})
	past := js
	past.Now = now - 3600
	must(past.build().Decode("session", good, &v))
	o.emit(map[string]interface{}{"kind": "decode", "id": "ok_from_future", "codec": past, "cookie_name": "session",
		"cookie": good, "decoded": fromGo(v)})
	// securecookie v1.1.1 (Debian) accepts an empty, non-nil hash key; v1.1.2 refuses it.
	empty := securecookie.New([]byte{}, nil)
	pinClock(empty, now)
	cookie, err := empty.Encode("session", "x")
	o.emit(map[string]interface{}{"kind": "empty_hash_key", "id": "empty_hash_key_v1_1_1", "cookie": cookie,
		"error": errText(err), "note": "v1.1.1 signs with an empty key; v1.1.2 returns 'hash key is not set'"})
}

// cookieValue is the value of a Set-Cookie line; its Expires attribute follows the wall clock,
// which the library reads directly, so only the value is reproducible.
func cookieValue(setCookie string) string {
	first := strings.SplitN(setCookie, ";", 2)[0]
	return strings.SplitN(first, "=", 2)[1]
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func rotationVectors(o out) {
	oldPair := []byte(hashKey2)
	newPair := []byte(hashKey)
	oldCodecs := securecookie.CodecsFromPairs(oldPair, []byte(aes256))
	bothCodecs := securecookie.CodecsFromPairs(newPair, []byte(aes128), oldPair, []byte(aes256))
	for _, c := range append(oldCodecs, bothCodecs...) {
		pinClock(c.(*securecookie.SecureCookie), now)
	}
	resetRandom()
	oldCookie, err := securecookie.EncodeMulti("session", "rotate me", oldCodecs...)
	must(err)
	resetRandom()
	newCookie, err := securecookie.EncodeMulti("session", "rotate me", bothCodecs...)
	must(err)
	var v string
	must(securecookie.DecodeMulti("session", oldCookie, &v, bothCodecs...))
	var w string
	multi := securecookie.DecodeMulti("session", newCookie, &w, oldCodecs...)
	o.emit(map[string]interface{}{
		"kind": "rotation", "id": "rotation_gob", "now": now,
		"pairs_new_first": []string{hashKey, aes128, hashKey2, aes256},
		"old_cookie":      oldCookie, "new_cookie": newCookie, "decoded": fromGo(v),
		"old_codecs_on_new_cookie_error": errText(multi), "class": errorClass(multi),
	})
}

func storeVectors(o out) {
	// CookieStore: one value and flashes (flashes are []interface{} under "_flash").
	store := sessions.NewCookieStore([]byte(hashKey), []byte(aes256))
	for _, c := range store.Codecs {
		pinClock(c.(*securecookie.SecureCookie), now)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	session, err := store.New(req, "gorilla-session")
	if err != nil {
		panic(err)
	}
	session.Values["user"] = "ada"
	session.AddFlash("welcome back")
	session.AddFlash("second")
	rec := httptest.NewRecorder()
	resetRandom()
	must(session.Save(req, rec))
	header := rec.Header().Get("Set-Cookie")
	o.emit(map[string]interface{}{"kind": "cookie_store", "id": "cookie_store_flashes", "now": now,
		"pairs": []string{hashKey, aes256}, "cookie_name": "gorilla-session", "set_cookie": header, "cookie_value": cookieValue(header),
		"values": fromGo(session.Values), "deterministic": false})

	one := sessions.NewCookieStore([]byte(hashKey))
	for _, c := range one.Codecs {
		pinClock(c.(*securecookie.SecureCookie), now)
	}
	session, err = one.New(req, "gorilla-session")
	if err != nil {
		panic(err)
	}
	session.Values["count"] = 3
	rec = httptest.NewRecorder()
	must(session.Save(req, rec))
	o.emit(map[string]interface{}{"kind": "cookie_store", "id": "cookie_store_one_value", "now": now,
		"pairs": []string{hashKey}, "cookie_name": "gorilla-session", "set_cookie": rec.Header().Get("Set-Cookie"),
		"cookie_value": cookieValue(rec.Header().Get("Set-Cookie")),
		"values":       fromGo(session.Values), "deterministic": true})

	// FilesystemStore: the cookie holds the encoded id; the file holds the encoded values.
	dir, err := os.MkdirTemp("", "gorilla-fs")
	must(err)
	defer os.RemoveAll(dir)
	fs := sessions.NewFilesystemStore(dir, []byte(hashKey))
	for _, c := range fs.Codecs {
		pinClock(c.(*securecookie.SecureCookie), now)
	}
	session, err = fs.New(req, "gorilla-fs")
	if err != nil {
		panic(err)
	}
	session.Values["user"] = "grace"
	rec = httptest.NewRecorder()
	resetRandom()
	must(session.Save(req, rec))
	file := filepath.Join(dir, "session_"+session.ID)
	content, err := os.ReadFile(file)
	must(err)
	o.emit(map[string]interface{}{"kind": "filesystem_store", "id": "filesystem_store_one_value", "now": now,
		"pairs": []string{hashKey}, "cookie_name": "gorilla-fs", "set_cookie": rec.Header().Get("Set-Cookie"),
		"cookie_value": cookieValue(rec.Header().Get("Set-Cookie")),
		"session_id":   session.ID, "file_name": filepath.Base(file), "file_content": string(content),
		"values": fromGo(session.Values), "deterministic": true})
}

// ---- decode mode: the reverse direction ----

type decodeRequest struct {
	ID         string    `json:"id"`
	Codec      codecSpec `json:"codec"`
	Pairs      []string  `json:"pairs"` // instead of codec: gorilla key pairs, DecodeMulti, gob unless codec.serializer is "json"
	CookieName string    `json:"cookie_name"`
	Cookie     string    `json:"cookie"`
	// "value" (default): interface{} for gob/json; "bytes" for nop; "session": gorilla
	// sessions' map[interface{}]interface{}; "cookie_store": what sessions.CookieStore.Get
	// gives a request carrying the cookie (needs pairs), its flashes taken with Flashes();
	// "filesystem_store": the same with sessions.NewFilesystemStore(dir, pairs...).
	Target string `json:"target"`
	Dir    string `json:"dir"` // filesystem_store: the store's directory
	// filesystem_store: strings to store in the session before saving it (none: no save).
	Set map[string]string `json:"set"`
}

func decodeRequests() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for in.Scan() {
		var r decodeRequest
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			must(enc.Encode(map[string]interface{}{"error": "bad request: " + err.Error()}))
			continue
		}
		value, err := decodeOne(r)
		if err != nil {
			must(enc.Encode(map[string]interface{}{"id": r.ID, "error": err.Error(), "class": errorClass(err)}))
		} else {
			must(enc.Encode(map[string]interface{}{"id": r.ID, "value": fromGo(value)}))
		}
	}
	must(in.Err())
}

func decodeOne(r decodeRequest) (interface{}, error) {
	var codecs []securecookie.Codec
	if len(r.Pairs) > 0 {
		pairs := [][]byte{}
		for _, k := range r.Pairs {
			pairs = append(pairs, keyBytes(k))
		}
		codecs = securecookie.CodecsFromPairs(pairs...)
		for _, c := range codecs {
			pinClock(c.(*securecookie.SecureCookie), r.Codec.Now)
			if r.Codec.Serializer == "json" {
				c.(*securecookie.SecureCookie).SetSerializer(securecookie.JSONEncoder{})
			}
			if r.Codec.MaxAge != nil {
				c.(*securecookie.SecureCookie).MaxAge(*r.Codec.MaxAge)
			}
			c.(*securecookie.SecureCookie).MinAge(r.Codec.MinAge)
		}
	} else {
		codecs = []securecookie.Codec{r.Codec.build()}
	}
	switch r.Target {
	case "cookie_store":
		return cookieStoreGet(r, codecs)
	case "filesystem_store":
		return filesystemStoreGet(r)
	case "bytes":
		var b []byte
		err := securecookie.DecodeMulti(r.CookieName, r.Cookie, &b, codecs...)
		return b, err
	case "session":
		m := map[interface{}]interface{}{}
		err := securecookie.DecodeMulti(r.CookieName, r.Cookie, &m, codecs...)
		return m, err
	case "string":
		var s string
		err := securecookie.DecodeMulti(r.CookieName, r.Cookie, &s, codecs...)
		return s, err
	}
	var v interface{}
	err := securecookie.DecodeMulti(r.CookieName, r.Cookie, &v, codecs...)
	return v, err
}

// cookieStoreGet reads the cookie as a Go service does: a request carrying it, a CookieStore
// with the request's key pairs, store.Get, then session.Flashes() (which asserts
// []interface{}, as applications rely on).
func cookieStoreGet(r decodeRequest, codecs []securecookie.Codec) (interface{}, error) {
	store := &sessions.CookieStore{Codecs: codecs, Options: &sessions.Options{Path: "/", MaxAge: 86400 * 30}}
	session, flashes, err := storeGet(store, cookieRequest(r), r.CookieName)
	if err != nil {
		return nil, err
	}
	return map[interface{}]interface{}{"values": session.Values, "flashes": flashes}, nil
}

// cookieRequest is a request carrying the cookie of r.
func cookieRequest(r decodeRequest) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: r.CookieName, Value: r.Cookie})
	return req
}

// storeGet is a Go service's store.Get on req, then session.Flashes(); a new session (the
// cookie refused) is an error.
func storeGet(store sessions.Store, req *http.Request, name string) (*sessions.Session, []interface{}, error) {
	session, err := store.Get(req, name)
	if err != nil {
		return nil, nil, err
	}
	if session.IsNew {
		return nil, nil, fmt.Errorf("the store gave a new session")
	}
	flashes := session.Flashes()
	if flashes == nil {
		flashes = []interface{}{}
	}
	return session, flashes, nil
}

// filesystemStoreGet reads the cookie as a Go service with sessions.NewFilesystemStore(dir,
// pairs...) does: store.Get, then session.Flashes(); the codecs' ages are the request's.
// With "set" it then stores those strings and saves the session (FilesystemStore.Save),
// answering with the new cookie value too.
func filesystemStoreGet(r decodeRequest) (interface{}, error) {
	pairs := [][]byte{}
	for _, k := range r.Pairs {
		pairs = append(pairs, keyBytes(k))
	}
	store := sessions.NewFilesystemStore(r.Dir, pairs...)
	for _, c := range store.Codecs {
		sc := c.(*securecookie.SecureCookie)
		pinClock(sc, r.Codec.Now)
		if r.Codec.MaxAge != nil {
			sc.MaxAge(*r.Codec.MaxAge)
		}
		sc.MinAge(r.Codec.MinAge)
	}
	req := cookieRequest(r)
	session, flashes, err := storeGet(store, req, r.CookieName)
	if err != nil {
		return nil, err
	}
	values := map[interface{}]interface{}{}
	for k, v := range session.Values {
		values[k] = v
	}
	answer := map[interface{}]interface{}{"values": values, "flashes": flashes, "id": session.ID}
	if len(r.Set) > 0 {
		for k, v := range r.Set {
			session.Values[k] = v
		}
		rec := httptest.NewRecorder()
		if err := session.Save(req, rec); err != nil {
			return nil, err
		}
		answer["cookie"] = cookieValue(rec.Header().Get("Set-Cookie"))
	}
	return answer, nil
}

// benchmarks times what benches/benches/gorilla.rs times on the Rust side, with the same keys:
// securecookie's encode and decode of 100 bytes (AES-256, NopEncoder), and a session of a user
// name and two flash messages decoded from its cookie, changed and encoded again (gob, as
// CookieStore.Get and Save do it, without the HTTP parts). One JSON line per bench, ns/op.
func benchmarks() {
	hash, block := []byte(hashKey), []byte("fedcba9876543210fedcba9876543210")
	nop := securecookie.New(hash, block).SetSerializer(securecookie.NopEncoder{})
	payload := []byte(strings.Repeat("x", 100))
	cookie, err := nop.Encode("session", payload)
	must(err)
	codecs := securecookie.CodecsFromPairs(hash, block)
	values := map[interface{}]interface{}{"user": "ada", "_flash": []interface{}{"welcome back", "second"}}
	session, err := securecookie.EncodeMulti("session", values, codecs...)
	must(err)
	run := func(name string, f func()) {
		r := testing.Benchmark(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f()
			}
		})
		must(json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"bench": name, "ns_per_op": float64(r.T.Nanoseconds()) / float64(r.N), "n": r.N}))
	}
	run("securecookie/encode", func() {
		_, err := nop.Encode("session", payload)
		must(err)
	})
	run("securecookie/decode", func() {
		var out []byte
		must(nop.Decode("session", cookie, &out))
	})
	run("session/decode+encode", func() {
		m := map[interface{}]interface{}{}
		must(securecookie.DecodeMulti("session", session, &m, codecs...))
		m["user"] = "grace"
		_, err := securecookie.EncodeMulti("session", m, codecs...)
		must(err)
	})
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

var _ = aes.BlockSize

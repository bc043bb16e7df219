// Round trips on random data: the real gorilla/sessions writes random sessions (-roundtrip),
// fastsession's Rust side reads each one, applies a plan of changes and saves it, and the real
// store reads the result back (-roundtrip-check), which must hold the Go values that the rules
// of README.md ("Round trips on random data") give. Everything the check needs is regenerated
// from the seed; only the securecookie IVs and the FilesystemStore ids are random.

package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/sessions"
)

// Address is the struct nested in Profile.
type Address struct {
	City string
	Zip  int
}

// Profile has a field of every kind a registered struct of a session tends to have.
type Profile struct {
	Name   string
	Age    int
	Score  int64
	Ratio  float64
	Admin  bool
	Tags   []string
	Counts map[string]int
	Token  []byte
	Home   Address
	Extra  interface{}
	Lucky  *int
}

var (
	timeType  = reflect.TypeOf(time.Time{})
	bytesType = reflect.TypeOf([]byte(nil))
	anyType   = reflect.TypeOf((*interface{})(nil)).Elem()

	scalarTypes = []reflect.Type{
		reflect.TypeOf(false), reflect.TypeOf(int(0)), reflect.TypeOf(int8(0)),
		reflect.TypeOf(int16(0)), reflect.TypeOf(int32(0)), reflect.TypeOf(int64(0)),
		reflect.TypeOf(uint(0)), reflect.TypeOf(uint8(0)), reflect.TypeOf(uint16(0)),
		reflect.TypeOf(uint32(0)), reflect.TypeOf(uint64(0)), reflect.TypeOf(uintptr(0)),
		reflect.TypeOf(float32(0)), reflect.TypeOf(float64(0)), reflect.TypeOf(""), bytesType,
	}
	containerTypes = []reflect.Type{
		reflect.TypeOf([]string{}), reflect.TypeOf([]int{}), reflect.TypeOf([]int8{}),
		reflect.TypeOf([]int16{}), reflect.TypeOf([]int32{}), reflect.TypeOf([]int64{}),
		reflect.TypeOf([]uint16{}), reflect.TypeOf([]uint32{}), reflect.TypeOf([]uint64{}),
		reflect.TypeOf([]float32{}), reflect.TypeOf([]float64{}), reflect.TypeOf([]bool{}),
		reflect.TypeOf([][]byte{}), reflect.TypeOf([]interface{}{}), reflect.TypeOf([][]string{}),
		reflect.TypeOf([3]int{}), reflect.TypeOf([2]string{}),
		reflect.TypeOf(map[string]interface{}{}), reflect.TypeOf(map[string]string{}),
		reflect.TypeOf(map[string]int{}), reflect.TypeOf(map[string][]string{}),
		reflect.TypeOf(map[int]string{}), reflect.TypeOf(map[interface{}]interface{}{}),
		reflect.TypeOf(Profile{}), reflect.TypeOf(Address{}),
		// Twice: the untyped containers are the common ones.
		reflect.TypeOf([]interface{}{}), reflect.TypeOf(map[string]interface{}{}),
	}
)

func init() {
	// Gob needs every concrete type an interface holds registered; gob's own basics are
	// registered again harmlessly, to keep the list visibly complete.
	for _, t := range append(append([]reflect.Type{}, scalarTypes...), containerTypes...) {
		gob.Register(reflect.Zero(t).Interface())
	}
	gob.Register(time.Time{})
	gob.Register(complex64(0))
	gob.Register(complex128(0))
}

// gobBudget keeps Go's cookie well under securecookie's 4096 bytes, leaving the Rust side
// room for its changes.
const gobBudget = 1200

// ---- sessions and plans ----

type rtSession struct {
	ID        string
	Store     string // "cookie" or "filesystem"
	Name      string
	Pairs     [][]byte // the Rust side's pairs, newest first: hash, block (nil: none), ...
	Writer    [][]byte // the pairs of the Go store that wrote the session
	Rotation  bool
	FlashKeys []string
	Keys      []interface{}            // the non-flash keys, in generation order
	Flashes   map[string][]interface{} // AddFlash'ed items per flash key
	Values    map[interface{}]interface{}
	Read      map[interface{}]interface{} // Values as a reader gets them (through gob)
	Plan      []planOp
	// Keys the Rust side declares a Go type for (GorillaFormat::with_go_type): Go's spelling.
	GoTypes  map[string]string
	declared map[string]reflect.Type
}

type planOp struct {
	Op   string // set, remove, take_flashes, add_flash, clear
	Key  string
	JSON interface{} // a JSON tree: nil, bool, json.Number, string, []interface{}, map[string]interface{}
}

func (p planOp) MarshalJSON() ([]byte, error) {
	m := map[string]interface{}{"op": p.Op}
	if p.Op != "clear" {
		m["key"] = p.Key
	}
	if p.Op == "set" || p.Op == "add_flash" {
		m["json"] = p.JSON
	}
	return json.Marshal(m)
}

type gen struct{ r *rand.Rand }

func (g *gen) n(k int) int    { return g.r.Intn(k) }
func (g *gen) one(k int) bool { return g.r.Intn(k) == 0 }
func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Intn(256))
	}
	return b
}

func (g *gen) pair() [][]byte {
	hash := g.bytes(1 + g.n(200))
	var block []byte
	switch g.n(4) {
	case 1:
		block = g.bytes(16)
	case 2:
		block = g.bytes(24)
	case 3:
		block = g.bytes(32)
	}
	return [][]byte{hash, block}
}

// generate makes the sessions of a seed; the same in both modes, whatever happens around it.
func generate(seed int64, count int) []*rtSession {
	g := &gen{rand.New(rand.NewSource(seed))}
	out := make([]*rtSession, 0, count)
	for i := 0; i < count; i++ {
		s := g.session(fmt.Sprintf("%d-%d", seed, i), i)
		// From a source of its own, so that the rest of each seed stays as it was.
		declare(s, &gen{rand.New(rand.NewSource(seed*7919 + int64(i)))})
		out = append(out, s)
	}
	return out
}

// declarable are Go types a Rust service may declare for a key it writes, with small JSON that
// fits each.
var declarable = []struct {
	t    reflect.Type
	json func(d *gen) interface{}
}{
	{reflect.TypeOf(int64(0)), func(d *gen) interface{} { return num(strconv.Itoa(d.n(1e6) - 5e5)) }},
	{reflect.TypeOf(int8(0)), func(d *gen) interface{} { return num(strconv.Itoa(d.n(256) - 128)) }},
	{reflect.TypeOf(uint16(0)), func(d *gen) interface{} { return num(strconv.Itoa(d.n(65536))) }},
	{reflect.TypeOf(float32(0)), func(d *gen) interface{} { return numOf(d.r.Float64()*2e6 - 1e6) }},
	{reflect.TypeOf(false), func(d *gen) interface{} { return d.one(2) }},
	{reflect.TypeOf([]string{}), func(d *gen) interface{} { return []interface{}{d.str(), d.str()} }},
	{reflect.TypeOf([]int64{}), func(d *gen) interface{} {
		return []interface{}{num(strconv.Itoa(d.n(100))), num(strconv.Itoa(-d.n(100)))}
	}},
	{reflect.TypeOf([2]string{}), func(d *gen) interface{} { return []interface{}{d.str(), d.str()} }},
	{reflect.TypeOf(map[string]interface{}{}), func(d *gen) interface{} {
		return map[string]interface{}{"n": num(strconv.Itoa(d.n(10))), "s": d.str()}
	}},
	{reflect.TypeOf(map[string]int{}), func(d *gen) interface{} {
		return map[string]interface{}{d.str(): num(strconv.Itoa(d.n(10)))}
	}},
}

// declare gives one session in three a new key with a declared Go type, set last in the plan.
func declare(s *rtSession, d *gen) {
	if !d.one(3) {
		return
	}
	pick := declarable[d.n(len(declarable))]
	key := "typed0"
	s.GoTypes = map[string]string{key: pick.t.String()}
	s.declared = map[string]reflect.Type{key: pick.t}
	s.Plan = append(s.Plan, planOp{Op: "set", Key: key, JSON: pick.json(d)})
}

func (g *gen) session(id string, i int) *rtSession {
	s := &rtSession{ID: id, Store: "cookie", Flashes: map[string][]interface{}{}, Plan: []planOp{}}
	if g.n(5) < 2 {
		s.Store = "filesystem"
	}
	s.Name = fmt.Sprintf("%s-%d", []string{"session", "gorilla", "sid", "app_s"}[g.n(4)], i)
	pair := g.pair()
	switch g.n(4) {
	case 0: // rotation: written under the old pair only
		old := g.pair()
		s.Pairs = append(append([][]byte{}, pair...), old...)
		s.Writer, s.Rotation = old, true
	case 1: // two pairs, written under the newest
		s.Pairs = append(append([][]byte{}, pair...), g.pair()...)
		s.Writer = s.Pairs
	default:
		s.Pairs, s.Writer = pair, pair
	}
	s.FlashKeys = []string{"_flash"}
	for _, k := range []string{"errors", "notices"} {
		if g.one(3) {
			s.FlashKeys = append(s.FlashKeys, k)
		}
	}
	s.Values = map[interface{}]interface{}{}
	for _, k := range s.FlashKeys {
		if g.one(2) {
			for n := 1 + g.n(3); n > 0; n-- {
				item := g.holdable(2)
				s.Flashes[k] = append(s.Flashes[k], item)
			}
			s.Values[k] = append([]interface{}{}, s.Flashes[k]...)
		}
	}
	add := func(key, value interface{}) bool {
		s.Values[key] = value
		if gobLen(s.Values) > gobBudget {
			delete(s.Values, key)
			return false
		}
		s.Keys = append(s.Keys, key)
		return true
	}
	for k, n := 0, 1+g.n(7); k < n; k++ {
		key := g.key(k)
		var v interface{}
		if g.one(6) {
			v = g.unholdable(0)
		} else {
			v = g.holdable(0)
		}
		if !add(key, v) {
			break
		}
	}
	if g.one(5) {
		key := []interface{}{42, int64(-7), uint8(3)}[g.n(3)]
		add(key, g.holdable(1))
	}
	s.Read = normalise(s.Values)
	g.plan(s)
	return s
}

var keyWords = []string{"user", "cart", "theme", "a b", "x.y", "ключ", "日本", "count", "", "Ü"}

func (g *gen) key(i int) string {
	return fmt.Sprintf("k%d%s", i, keyWords[g.n(len(keyWords))])
}

// visible are the string keys whose values Rust can hold, in generation order.
func (s *rtSession) visible() []string {
	var out []string
	for _, k := range s.Keys {
		if key, ok := k.(string); ok {
			if _, ok := toJSON(s.Read[k]); ok {
				out = append(out, key)
			}
		}
	}
	return out
}

// hiddenStrings are the string keys whose values Rust cannot hold.
func (s *rtSession) hiddenStrings() []string {
	var out []string
	for _, k := range s.Keys {
		if key, ok := k.(string); ok {
			if _, ok := toJSON(s.Read[k]); !ok {
				out = append(out, key)
			}
		}
	}
	return out
}

func (g *gen) pick(keys []string) string { return keys[g.n(len(keys))] }

func (g *gen) plan(s *rtSession) {
	visible, hidden := s.visible(), s.hiddenStrings()
	n := g.n(6)
	if n == 0 && !s.Rotation {
		n = 1 + g.n(3)
	}
	fresh := 0
	newKey := func() string {
		fresh++
		return fmt.Sprintf("new%d", fresh)
	}
	set := func(k string, j interface{}) { s.Plan = append(s.Plan, planOp{Op: "set", Key: k, JSON: j}) }
	for len(s.Plan) < n {
		// Weights out of 40; a clear wipes what the other ops test, so it is rare.
		switch c := g.n(40); {
		case c < 7 && len(visible) > 0: // the same JSON: rule 1
			k := g.pick(visible)
			j, _ := toJSON(s.Read[k])
			set(k, j)
		case c < 16 && len(visible) > 0: // a change that fits the old type: rule 2
			k := g.pick(visible)
			set(k, g.fitJSON(reflect.ValueOf(s.Read[k])))
		case c < 23 && len(visible) > 0: // a change that does not fit: rule 3
			k := g.pick(visible)
			set(k, g.misfitJSON(s.Read[k]))
		case c < 27:
			set(newKey(), g.json(0))
		case c < 29 && len(hidden) > 0: // a key Rust could not see
			set(g.pick(hidden), g.json(0))
		case c < 32:
			var k string
			switch {
			case len(hidden) > 0 && g.one(3):
				k = g.pick(hidden)
			case len(visible) > 0 && !g.one(4):
				k = g.pick(visible)
			default:
				k = "absent"
			}
			s.Plan = append(s.Plan, planOp{Op: "remove", Key: k})
		case c < 38:
			k := g.pick(s.FlashKeys)
			if g.one(2) {
				s.Plan = append(s.Plan, planOp{Op: "take_flashes", Key: k})
			} else {
				s.Plan = append(s.Plan, planOp{Op: "add_flash", Key: k, JSON: g.json(1)})
			}
		default:
			s.Plan = append(s.Plan, planOp{Op: "clear"})
			for m := 1 + g.n(2); m > 0; m-- {
				if len(visible) > 0 && g.one(2) {
					k := g.pick(visible)
					set(k, g.fitJSON(reflect.ValueOf(s.Read[k])))
				} else {
					set(newKey(), g.json(0))
				}
			}
		}
	}
}

// ---- random values ----

func (g *gen) signed(bits int) int64 {
	min := int64(-1) << (bits - 1)
	switch g.n(4) {
	case 0:
		return int64(g.n(21) - 10)
	case 1:
		if g.one(2) {
			return min
		}
		return ^min
	default:
		return int64(g.r.Uint64()) >> (64 - bits)
	}
}

func (g *gen) unsigned(bits int) uint64 {
	switch g.n(4) {
	case 0:
		return uint64(g.n(11))
	case 1:
		return math.MaxUint64 >> (64 - bits)
	default:
		return g.r.Uint64() >> (64 - bits)
	}
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// float64v never gives -0, which JSON text would not carry back as such.
func (g *gen) float64v() float64 {
	switch g.n(6) {
	case 0:
		return float64(g.n(2001)-1000) / 8
	case 1:
		return float64(g.n(100001)-50000) / 100
	case 2:
		for {
			f := math.Float64frombits(g.r.Uint64())
			if finite(f) && f != 0 {
				return f
			}
		}
	case 3:
		return []float64{1e20, 1e21, 5e-324, math.MaxFloat64, -math.MaxFloat64, 1e-7,
			123456789, 9223372036854775808, 0.1, 1.5e300}[g.n(10)]
	default:
		return math.Ldexp(g.r.Float64()+0.5, g.n(200)-100) * float64(1-2*g.n(2))
	}
}

func (g *gen) float32v() float32 {
	switch g.n(5) {
	case 0:
		return float32(g.n(2001)-1000) / 4
	case 1:
		return float32(g.n(100001)-50000) / 100
	case 2:
		for {
			f := math.Float32frombits(g.r.Uint32())
			if finite(float64(f)) && f != 0 {
				return f
			}
		}
	case 3:
		return []float32{math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0.1, 16777217}[g.n(5)]
	default:
		return float32(g.r.NormFloat64() * 1000)
	}
}

var words = []string{"ada", "grace", "x", "", "hello world", `<a href="x">&amp;</a>`, "grüße",
	"日本", "🎉", "line\u2028para\u2029", "\x00\x01\t\n\"\\", "AAEC/w==", "not base64!", "42",
	"true", "null", "Ünïcödé ✓"}

func (g *gen) str() string {
	if g.one(2) {
		return words[g.n(len(words))]
	}
	b := make([]byte, g.n(12))
	for i := range b {
		b[i] = byte(0x20 + g.n(0x5f))
	}
	return string(b)
}

// holdable is a random value Rust can hold: a scalar, or at depth < 3 a container.
func (g *gen) holdable(depth int) interface{} {
	if g.one(14) {
		return nil
	}
	var t reflect.Type
	if depth >= 3 || g.one(2) {
		t = scalarTypes[g.n(len(scalarTypes))]
	} else {
		t = containerTypes[g.n(len(containerTypes))]
	}
	return g.valueOf(t, depth).Interface()
}

// valueOf is a random holdable value of type t.
func (g *gen) valueOf(t reflect.Type, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(g.one(2))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(g.signed(t.Bits()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(g.unsigned(t.Bits()))
	case reflect.Float32:
		v.SetFloat(float64(g.float32v()))
	case reflect.Float64:
		v.SetFloat(g.float64v())
	case reflect.String:
		v.SetString(g.str())
	case reflect.Slice:
		if t == bytesType {
			v.SetBytes(g.bytes(g.n(6)))
			break
		}
		n := g.n(4)
		s := reflect.MakeSlice(t, n, n)
		for i := 0; i < n; i++ {
			s.Index(i).Set(g.valueOf(t.Elem(), depth+1))
		}
		v.Set(s)
	case reflect.Array:
		for i := 0; i < t.Len(); i++ {
			v.Index(i).Set(g.valueOf(t.Elem(), depth+1))
		}
	case reflect.Map:
		m := reflect.MakeMap(t)
		for i, n := 0, g.n(4); i < n; i++ {
			m.SetMapIndex(g.mapKey(t.Key(), i), g.valueOf(t.Elem(), depth+1))
		}
		v.Set(m)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if !g.one(4) { // else zero: gob leaves it out
				v.Field(i).Set(g.valueOf(t.Field(i).Type, depth+1))
			}
		}
	case reflect.Ptr:
		if !g.one(3) {
			p := reflect.New(t.Elem())
			p.Elem().Set(g.valueOf(t.Elem(), depth+1))
			v.Set(p)
		}
	case reflect.Interface:
		if x := g.holdable(depth + 1); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		panic("no random values of " + t.String())
	}
	return v
}

func (g *gen) mapKey(t reflect.Type, i int) reflect.Value {
	switch t.Kind() {
	case reflect.Int:
		return reflect.ValueOf(int(g.signed(64)))
	case reflect.Interface:
		return reflect.ValueOf(fmt.Sprintf("%s%d", g.str(), i))
	}
	return reflect.ValueOf(fmt.Sprintf("%s%d", g.str(), i)).Convert(t)
}

// unholdable is a random value Rust cannot hold, possibly inside a holdable container; or a
// time.Time, which Rust reads as RFC 3339 text but which the holdable generator does not make.
func (g *gen) unholdable(depth int) interface{} {
	c := g.n(12)
	if depth >= 2 {
		c = g.n(8)
	}
	switch c {
	case 0:
		return []float64{math.NaN(), math.Inf(1), math.Inf(-1)}[g.n(3)]
	case 1:
		return []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[g.n(3)]
	case 2:
		return complex(g.float32v(), g.float32v())
	case 3:
		return complex(g.float64v(), g.float64v())
	case 4:
		return []string{"\xff\xfe", "ok\xc3", "\xed\xa0\x80", "a\x80b"}[g.n(4)]
	case 5:
		t := time.Unix(g.r.Int63n(4e9), g.r.Int63n(1e9))
		if g.one(2) {
			return t.UTC()
		}
		return t.In(time.FixedZone("", (g.n(48)-24)*1800))
	case 6, 7: // a non-string key inside a value
		return map[interface{}]interface{}{"a": g.holdable(2), 7: g.holdable(2)}
	case 8:
		return []interface{}{g.holdable(2), g.unholdable(depth + 1)}
	case 9:
		return map[string]interface{}{"ok": g.holdable(2), "bad": g.unholdable(depth + 1)}
	case 10:
		p := g.valueOf(reflect.TypeOf(Profile{}), 1).Interface().(Profile)
		p.Ratio = math.NaN()
		return p
	default:
		p := g.valueOf(reflect.TypeOf(Profile{}), 1).Interface().(Profile)
		p.Extra = g.unholdable(depth + 1)
		return p
	}
}

// ---- random JSON for the plan ----

func num(text string) json.Number { return json.Number(text) }

func numOf(v interface{}) json.Number {
	b, err := json.Marshal(v)
	must(err)
	return json.Number(b)
}

// json is a random JSON value, as a Rust handler might store.
func (g *gen) json(depth int) interface{} {
	c := g.n(11)
	if depth >= 3 && c >= 7 {
		c = g.n(7)
	}
	switch c {
	case 0:
		return nil
	case 1:
		return g.one(2)
	case 2:
		return numOf(g.n(2001) - 1000)
	case 3:
		return num([]string{"9223372036854775807", "-9223372036854775808", "9223372036854775808",
			"18446744073709551615", "18446744073709551616", "123456789012345678901234",
			"-9223372036854775809", "1e2", "2.0", "0"}[g.n(10)])
	case 4:
		return numOf(g.float64v())
	case 5, 6:
		return g.str()
	case 7:
		out := []interface{}{}
		for n := g.n(4); n > 0; n-- {
			out = append(out, g.json(depth+1))
		}
		return out
	case 8:
		out := map[string]interface{}{}
		for i, n := 0, g.n(4); i < n; i++ {
			out[fmt.Sprintf("%s%d", g.str(), i)] = g.json(depth + 1)
		}
		return out
	default: // the JSON of a typed value: base64 text, struct-shaped objects
		j, ok := toJSON(g.holdable(depth + 1))
		if !ok {
			panic("holdable value Rust cannot hold")
		}
		return j
	}
}

func mustJSON(v interface{}) interface{} {
	j, ok := toJSON(v)
	if !ok {
		panic(fmt.Sprintf("no JSON for %#v", v))
	}
	return j
}

// fitOfType is JSON that fits t: the JSON of a random value of t.
func (g *gen) fitOfType(t reflect.Type) interface{} {
	switch {
	case t.Kind() == reflect.Interface:
		return g.json(2)
	case t.Kind() == reflect.Float32 && g.one(2): // a float64 that float32 rounds
		return numOf(float64(g.float32v()) * (1 + g.r.Float64()*1e-6))
	}
	return mustJSON(g.valueOf(t, 2).Interface())
}

func cloneArray(j interface{}) []interface{} {
	a, _ := j.([]interface{})
	return append([]interface{}{}, a...)
}

func cloneObject(j interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	if m, ok := j.(map[string]interface{}); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func sortedKeys(m map[string]interface{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fitJSON is a change to the holdable value v that still fits v's type.
func (g *gen) fitJSON(v reflect.Value) interface{} {
	if !v.IsValid() { // nil: anything
		return g.json(0)
	}
	t := v.Type()
	if t == timeType { // another time, in UTC or a fixed zone
		at := time.Unix(g.r.Int63n(4e9), g.r.Int63n(1e9))
		if g.one(2) {
			return at.UTC().Format(time.RFC3339Nano)
		}
		return at.In(time.FixedZone("", (g.n(48)-24)*1800)).Format(time.RFC3339Nano)
	}
	old := mustJSON(v.Interface())
	switch {
	case t.Kind() == reflect.Slice && t != bytesType:
		a := cloneArray(old)
		switch {
		case g.one(8):
			return nil
		case len(a) > 0 && g.one(2):
			i := g.n(len(a))
			a[i] = g.fitElem(v.Index(i), t.Elem())
		default:
			a = append(a, g.fitOfType(t.Elem()))
		}
		return a
	case t.Kind() == reflect.Array:
		a := cloneArray(old)
		i := g.n(len(a))
		a[i] = g.fitElem(v.Index(i), t.Elem())
		return a
	case t.Kind() == reflect.Map:
		o := cloneObject(old)
		keys := sortedKeys(o)
		if len(keys) > 0 && g.one(2) && t.Key().Kind() != reflect.Int {
			k := keys[g.n(len(keys))]
			o[k] = g.fitElem(v.MapIndex(reflect.ValueOf(k).Convert(t.Key())), t.Elem())
		} else {
			o[g.newObjectKey(o, t.Key())] = g.fitOfType(t.Elem())
		}
		return o
	case t.Kind() == reflect.Struct:
		o := cloneObject(old)
		f := t.Field(g.n(t.NumField()))
		if g.one(4) { // a missing field is the zero value
			delete(o, f.Name)
		} else {
			o[f.Name] = g.fitElem(v.FieldByName(f.Name), f.Type)
		}
		return o
	}
	return g.fitOfType(t)
}

// fitElem is JSON for an element of type t whose old value is old: for interface elements a
// change that fits the dynamic value (nested rule 2), else a random fitting value.
func (g *gen) fitElem(old reflect.Value, t reflect.Type) interface{} {
	if t.Kind() == reflect.Interface && !old.IsNil() && g.one(2) {
		return g.fitJSON(old.Elem())
	}
	return g.fitOfType(t)
}

func (g *gen) newObjectKey(o map[string]interface{}, key reflect.Type) string {
	for {
		var k string
		if key.Kind() == reflect.Int {
			k = strconv.FormatInt(g.signed(64), 10)
		} else {
			k = fmt.Sprintf("added%d", g.n(1000))
		}
		if _, taken := o[k]; !taken {
			return k
		}
	}
}

// misfitOfType is JSON that does not fit t.
func (g *gen) misfitOfType(t reflect.Type) interface{} {
	switch t.Kind() {
	case reflect.Bool:
		return []interface{}{num("1"), "true"}[g.n(2)]
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		max := new(big.Int).Lsh(big.NewInt(1), uint(t.Bits()-1))
		switch g.n(4) {
		case 0:
			return num(new(big.Int).Add(max, big.NewInt(int64(g.n(1000)))).String())
		case 1:
			return num(new(big.Int).Sub(new(big.Int).Neg(max), big.NewInt(int64(1+g.n(1000)))).String())
		case 2:
			return num(fmt.Sprintf("%d.5", g.n(100)))
		}
		return "12"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		max := new(big.Int).Lsh(big.NewInt(1), uint(t.Bits()))
		switch g.n(4) {
		case 0:
			return num(new(big.Int).Add(max, big.NewInt(int64(g.n(1000)))).String())
		case 1:
			return num(strconv.Itoa(-1 - g.n(100)))
		case 2:
			return num(fmt.Sprintf("%d.25", g.n(100)))
		}
		return []interface{}{}
	case reflect.Float32:
		return []interface{}{num("1e+300"), num("-3.5e+38"), "1.5"}[g.n(3)]
	case reflect.Float64:
		return []interface{}{"1.5", true, []interface{}{num("1")}}[g.n(3)]
	case reflect.String:
		return []interface{}{num("7"), false, []interface{}{"a"}}[g.n(3)]
	case reflect.Slice:
		if t == bytesType {
			return []interface{}{"not base64!", "abc", "YQ", num("5")}[g.n(4)]
		}
		if t.Elem().Kind() != reflect.Interface && g.one(2) {
			return []interface{}{g.fitOfType(t.Elem()), g.misfitOfType(t.Elem())}
		}
		return []interface{}{"x", map[string]interface{}{}}[g.n(2)]
	case reflect.Array:
		a := make([]interface{}, 0, t.Len()+1)
		for i := 0; i < t.Len(); i++ {
			a = append(a, g.fitOfType(t.Elem()))
		}
		switch g.n(3) {
		case 0:
			return append(a, g.fitOfType(t.Elem()))
		case 1:
			return a[:t.Len()-1]
		}
		a[g.n(t.Len())] = g.misfitOfType(t.Elem())
		return a
	case reflect.Map:
		if t.Elem().Kind() != reflect.Interface && g.one(2) {
			return map[string]interface{}{"bad": g.misfitOfType(t.Elem())}
		}
		if t.Key().Kind() == reflect.Int && g.one(2) {
			return map[string]interface{}{[]string{"x", "1.5", "99999999999999999999"}[g.n(3)]: g.fitOfType(t.Elem())}
		}
		return []interface{}{"x", []interface{}{}}[g.n(2)]
	case reflect.Struct:
		if g.one(2) {
			return map[string]interface{}{"Unknown": num("1")}
		}
		for {
			f := t.Field(g.n(t.NumField()))
			if f.Type.Kind() != reflect.Interface {
				return map[string]interface{}{f.Name: g.misfitOfType(f.Type)}
			}
		}
	case reflect.Ptr:
		return g.misfitOfType(t.Elem())
	}
	panic("no misfit for " + t.String())
}

// misfitJSON is a change to o that no longer fits o's type.
func (g *gen) misfitJSON(o interface{}) interface{} {
	if o == nil {
		return g.json(0)
	}
	v := reflect.ValueOf(o)
	t := v.Type()
	if t == timeType { // text that is no RFC 3339 time
		return "yesterday " + g.str()
	}
	old := mustJSON(o)
	switch {
	case t.Kind() == reflect.Slice && t != bytesType && t.Elem().Kind() != reflect.Interface && g.one(2):
		return append(cloneArray(old), g.misfitOfType(t.Elem())) // []int8 with 300 appended
	case t.Kind() == reflect.Map && t.Elem().Kind() != reflect.Interface && g.one(2):
		m := cloneObject(old)
		m[g.newObjectKey(m, reflect.TypeOf(""))] = g.misfitOfType(t.Elem())
		return m
	case t.Kind() == reflect.Struct && g.one(2):
		m := cloneObject(old)
		if g.one(2) {
			m["Unknown"] = g.json(2)
		} else {
			f := t.Field(g.n(t.NumField()))
			if f.Type.Kind() == reflect.Interface {
				m["Nope"] = num("1")
			} else {
				m[f.Name] = g.misfitOfType(f.Type)
			}
		}
		return m
	}
	return g.misfitOfType(t)
}

// ---- the rules ----

// toJSON is a Go value as Rust reads it (README, "JSON(o)"); false if Rust cannot hold it.
func toJSON(v interface{}) (interface{}, bool) { return jsonOf(reflect.ValueOf(v)) }

func jsonOf(v reflect.Value) (interface{}, bool) {
	if !v.IsValid() {
		return nil, true
	}
	if v.Type() == timeType {
		// Go's JSON of a time: RFC 3339 with nanoseconds; it refuses years beyond 0-9999.
		text, err := v.Interface().(time.Time).MarshalJSON()
		if err != nil {
			return nil, false
		}
		var s string
		must(json.Unmarshal(text, &s))
		return s, true
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil, true
		}
		return jsonOf(v.Elem())
	case reflect.Ptr:
		// Gob sends what a pointer points to and leaves a nil one out: Rust sees the element's
		// type, and a nil pointer as the element's zero value.
		if v.IsNil() {
			return jsonOf(reflect.Zero(v.Type().Elem()))
		}
		return jsonOf(v.Elem())
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return num(strconv.FormatInt(v.Int(), 10)), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return num(strconv.FormatUint(v.Uint(), 10)), true
	case reflect.Float32, reflect.Float64:
		if !finite(v.Float()) {
			return nil, false
		}
		if v.Kind() == reflect.Float32 {
			return numOf(float32(v.Float())), true // 32-bit shortest, as Go's json
		}
		return numOf(v.Float()), true
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return nil, false
		}
		return v.String(), true
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil, true
		}
		if v.Type() == bytesType {
			return base64.StdEncoding.EncodeToString(v.Bytes()), true
		}
		out := make([]interface{}, v.Len())
		for i := range out {
			var ok bool
			if out[i], ok = jsonOf(v.Index(i)); !ok {
				return nil, false
			}
		}
		return out, true
	case reflect.Map:
		if v.IsNil() {
			return nil, true
		}
		out := map[string]interface{}{}
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if k.Kind() == reflect.Interface {
				k = k.Elem()
			}
			var name string
			switch k.Kind() {
			case reflect.String:
				name = k.String()
				if !utf8.ValidString(name) {
					return nil, false
				}
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				if v.Type().Key().Kind() == reflect.Interface {
					return nil, false // a non-string key of map[interface{}]interface{}
				}
				name = strconv.FormatInt(k.Int(), 10)
			default:
				return nil, false
			}
			e, ok := jsonOf(iter.Value())
			if !ok {
				return nil, false
			}
			out[name] = e
		}
		return out, true
	case reflect.Struct:
		out := map[string]interface{}{}
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			e, ok := jsonOf(v.Field(i))
			if !ok {
				return nil, false
			}
			out[v.Type().Field(i).Name] = e
		}
		return out, true
	}
	return nil, false
}

// isInteger says whether a JSON number is an integer as Rust's serde_json reads it: no
// fraction or exponent, within int64 or uint64.
func isInteger(n json.Number) bool {
	s := string(n)
	if strings.ContainsAny(s, ".eE") {
		return false
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return true
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func bigInt(n json.Number) *big.Int {
	i, ok := new(big.Int).SetString(string(n), 10)
	if !ok {
		panic("not an integer: " + string(n))
	}
	return i
}

func numFloat(n json.Number) float64 {
	f, err := strconv.ParseFloat(string(n), 64)
	must(err)
	return f
}

// jsonEqual compares JSON trees; numbers are equal when both are integers of the same value,
// or both other numbers of the same float64 (as serde_json's Value compares them).
func jsonEqual(a, b interface{}) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		if !ok || isInteger(x) != isInteger(y) {
			return false
		}
		if isInteger(x) {
			return bigInt(x).Cmp(bigInt(y)) == 0
		}
		return numFloat(x) == numFloat(y)
	case []interface{}:
		y, ok := b.([]interface{})
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]interface{}:
		y, ok := b.(map[string]interface{})
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	}
	panic(fmt.Sprintf("not a JSON tree: %#v", a))
}

// natural is rule 3: the Go value a new JSON value becomes.
func natural(j interface{}) interface{} {
	switch x := j.(type) {
	case json.Number:
		if isInteger(x) {
			if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return int(i)
			}
			u, err := strconv.ParseUint(string(x), 10, 64)
			must(err)
			return u
		}
		return numFloat(x)
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = natural(e)
		}
		return out
	case map[string]interface{}:
		out := map[string]interface{}{}
		for k, e := range x {
			out[k] = natural(e)
		}
		return out
	}
	return j // nil, bool, string
}

// decide is rules 1-3 for JSON j written over the old value o (if hasOld); the rule applied.
func decide(j, o interface{}, hasOld bool) (interface{}, string) {
	if hasOld {
		if oj, ok := toJSON(o); ok {
			if jsonEqual(j, oj) {
				return o, "1"
			}
			if o != nil {
				if v, ok := fit(j, reflect.TypeOf(o), reflect.ValueOf(o)); ok {
					return v.Interface(), "2"
				}
			}
		}
	}
	return natural(j), "3"
}

// fit converts j to t if it fits (README, "Fits"); old is the value it replaces, if valid.
func fit(j interface{}, t reflect.Type, old reflect.Value) (reflect.Value, bool) {
	out := reflect.New(t).Elem()
	if t.Kind() == reflect.Interface {
		var o interface{}
		has := old.IsValid()
		if has && !old.IsNil() {
			o = old.Elem().Interface()
		}
		if v, _ := decide(j, o, has); v != nil {
			out.Set(reflect.ValueOf(v))
		}
		return out, true
	}
	if j == nil && t.Kind() != reflect.Ptr {
		switch t.Kind() {
		case reflect.Slice, reflect.Map:
			return out, true
		}
		return out, false
	}
	if t == timeType {
		// RFC 3339 text, as time.Time's UnmarshalJSON reads it.
		s, ok := j.(string)
		if !ok {
			return out, false
		}
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return out, false
		}
		out.Set(reflect.ValueOf(tm))
		return out, true
	}
	elem := func(v reflect.Value, get func() reflect.Value) reflect.Value {
		if !v.IsValid() {
			return reflect.Value{}
		}
		return get()
	}
	switch t.Kind() {
	case reflect.Bool:
		b, ok := j.(bool)
		out.SetBool(b)
		return out, ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := j.(json.Number)
		if !ok || !isInteger(n) {
			return out, false
		}
		i, err := strconv.ParseInt(string(n), 10, t.Bits())
		out.SetInt(i)
		return out, err == nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := j.(json.Number)
		if !ok || !isInteger(n) || strings.HasPrefix(string(n), "-") {
			return out, false
		}
		u, err := strconv.ParseUint(string(n), 10, t.Bits())
		out.SetUint(u)
		return out, err == nil
	case reflect.Float64:
		n, ok := j.(json.Number)
		if ok {
			out.SetFloat(numFloat(n))
		}
		return out, ok
	case reflect.Float32:
		n, ok := j.(json.Number)
		if !ok || math.Abs(numFloat(n)) > math.MaxFloat32 {
			return out, false
		}
		out.SetFloat(float64(float32(numFloat(n))))
		return out, true
	case reflect.String:
		s, ok := j.(string)
		out.SetString(s)
		return out, ok
	case reflect.Slice, reflect.Array:
		if t == bytesType {
			s, ok := j.(string)
			if !ok || strings.ContainsAny(s, "\r\n") {
				return out, false
			}
			b, err := base64.StdEncoding.Strict().DecodeString(s)
			out.SetBytes(b)
			return out, err == nil
		}
		a, ok := j.([]interface{})
		if !ok || (t.Kind() == reflect.Array && len(a) != t.Len()) {
			return out, false
		}
		if t.Kind() == reflect.Slice {
			out.Set(reflect.MakeSlice(t, len(a), len(a)))
		}
		for i, e := range a {
			var o reflect.Value
			if old.IsValid() && i < old.Len() {
				o = old.Index(i)
			}
			v, ok := fit(e, t.Elem(), o)
			if !ok {
				return out, false
			}
			out.Index(i).Set(v)
		}
		return out, true
	case reflect.Map:
		m, ok := j.(map[string]interface{})
		if !ok {
			return out, false
		}
		out.Set(reflect.MakeMap(t))
		for k, e := range m {
			var key reflect.Value
			switch t.Key().Kind() {
			case reflect.String:
				key = reflect.ValueOf(k).Convert(t.Key())
			case reflect.Interface:
				key = reflect.ValueOf(k)
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				i, err := strconv.ParseInt(k, 10, t.Key().Bits())
				if err != nil {
					return out, false
				}
				key = reflect.New(t.Key()).Elem()
				key.SetInt(i)
			default:
				return out, false
			}
			o := elem(old, func() reflect.Value {
				if old.IsNil() {
					return reflect.Value{}
				}
				return old.MapIndex(key)
			})
			v, ok := fit(e, t.Elem(), o)
			if !ok {
				return out, false
			}
			out.SetMapIndex(key, v)
		}
		return out, true
	case reflect.Struct:
		m, ok := j.(map[string]interface{})
		if !ok {
			return out, false
		}
		for k, e := range m {
			f, ok := t.FieldByName(k)
			if !ok || !f.IsExported() || len(f.Index) != 1 {
				return out, false
			}
			v, ok := fit(e, f.Type, elem(old, func() reflect.Value { return old.FieldByIndex(f.Index) }))
			if !ok {
				return out, false
			}
			out.FieldByIndex(f.Index).Set(v)
		}
		return out, true
	case reflect.Ptr: // what fits the element (the wire has no pointers)
		var o reflect.Value
		if old.IsValid() && !old.IsNil() {
			o = old.Elem()
		}
		v, ok := fit(j, t.Elem(), o)
		if !ok {
			return out, false
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(v)
		out.Set(p)
		return out, true
	}
	return out, false
}

// expected runs the plan over the session as read: the Go values the check must find (flash
// lists under their keys), the rule behind each, and why keys that are gone are gone.
func (s *rtSession) expected() (map[interface{}]interface{}, map[interface{}]string, map[interface{}]string) {
	isFlash := map[string]bool{}
	for _, k := range s.FlashKeys {
		isFlash[k] = true
	}
	visible := map[string]bool{}
	for _, k := range s.visible() {
		visible[k] = true
	}
	type entry struct {
		j   interface{}
		set bool
	}
	values := map[string]entry{}
	for k := range visible {
		values[k] = entry{}
	}
	hidden := map[interface{}]bool{}
	for _, k := range s.Keys {
		if key, ok := k.(string); !ok || !visible[key] {
			hidden[k] = true
		}
	}
	type flash struct {
		old   []interface{}
		added []interface{}
	}
	flashes := map[string]*flash{}
	for _, k := range s.FlashKeys {
		if list, ok := s.Read[k].([]interface{}); ok {
			flashes[k] = &flash{old: list}
		}
	}
	gone := map[interface{}]string{}
	for _, op := range s.Plan {
		switch op.Op {
		case "set":
			values[op.Key] = entry{op.JSON, true}
			if hidden[op.Key] {
				delete(hidden, op.Key)
			}
		case "remove":
			if _, ok := values[op.Key]; ok {
				delete(values, op.Key)
				gone[op.Key] = "removed"
			}
		case "clear":
			for k := range values {
				gone[k] = "cleared"
			}
			for k := range hidden {
				gone[k] = "5 (cleared)"
			}
			values, hidden = map[string]entry{}, map[interface{}]bool{}
		case "take_flashes":
			if flashes[op.Key] != nil {
				gone[op.Key] = "4 (taken)"
			}
			delete(flashes, op.Key)
		case "add_flash":
			if flashes[op.Key] == nil {
				flashes[op.Key] = &flash{}
			}
			flashes[op.Key].added = append(flashes[op.Key].added, op.JSON)
		}
	}
	out := map[interface{}]interface{}{}
	rules := map[interface{}]string{}
	for k := range hidden {
		out[k], rules[k] = s.Read[k], "5 (hidden, kept)"
	}
	for k, e := range values {
		delete(gone, k)
		switch {
		case !e.set:
			out[k], rules[k] = s.Read[k], "1 (untouched)"
		case s.declared[k] != nil:
			v, ok := fit(e.j, s.declared[k], reflect.Value{})
			if !ok {
				panic("declared JSON that does not fit its type")
			}
			out[k], rules[k] = v.Interface(), "D (declared "+s.GoTypes[k]+")"
		case visible[k]:
			out[k], rules[k] = decide(e.j, s.Read[k], true)
		default:
			_, wasHidden := s.Read[k]
			out[k], rules[k] = natural(e.j), "3 (new key)"
			if wasHidden {
				rules[k] = "3 (was hidden)"
			}
		}
	}
	for k, f := range flashes {
		list := append([]interface{}{}, f.old...)
		for _, j := range f.added {
			list = append(list, natural(j))
		}
		if len(list) > 0 {
			delete(gone, k)
			out[k], rules[k] = list, "4"
		}
	}
	return out, rules, gone
}

// ---- comparing ----

func gobLen(m map[interface{}]interface{}) int {
	var buf bytes.Buffer
	must(gob.NewEncoder(&buf).Encode(m))
	return buf.Len()
}

// normalise is m as gob gives it back (empty slices nil, pointers to zero nil, ...).
func normalise(m map[interface{}]interface{}) map[interface{}]interface{} {
	var buf bytes.Buffer
	must(gob.NewEncoder(&buf).Encode(m))
	out := map[interface{}]interface{}{}
	must(gob.NewDecoder(&buf).Decode(&out))
	return out
}

// same is reflect.DeepEqual (dynamic types included) with NaN equal to NaN and times compared
// as instants in the same zone offset.
func same(a, b reflect.Value) bool {
	if !a.IsValid() || !b.IsValid() {
		return a.IsValid() == b.IsValid()
	}
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == timeType {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		_, oa := ta.Zone()
		_, ob := tb.Zone()
		return ta.Equal(tb) && oa == ob
	}
	switch a.Kind() {
	case reflect.Interface, reflect.Ptr:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return same(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		fallthrough
	case reflect.Array:
		for i := 0; i < a.Len(); i++ {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		iter := a.MapRange()
		for iter.Next() {
			w := b.MapIndex(iter.Key())
			if !w.IsValid() || !same(iter.Value(), w) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float() || (math.IsNaN(a.Float()) && math.IsNaN(b.Float()))
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		eq := func(p, q float64) bool { return p == q || (math.IsNaN(p) && math.IsNaN(q)) }
		return eq(real(x), real(y)) && eq(imag(x), imag(y))
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.String:
		return a.String() == b.String()
	}
	panic("cannot compare " + a.Type().String())
}

// typed writes a value with every dynamic type, deterministically (maps sorted, pointers
// followed): %#v hides the type of numbers inside interfaces and prints addresses.
func typed(v interface{}) string {
	var b strings.Builder
	writeTyped(&b, reflect.ValueOf(v))
	return b.String()
}

func writeTyped(b *strings.Builder, v reflect.Value) {
	if !v.IsValid() {
		b.WriteString("nil")
		return
	}
	if v.Type() == timeType {
		fmt.Fprintf(b, "time.Time(%s)", v.Interface().(time.Time).Format(time.RFC3339Nano))
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
		} else {
			writeTyped(b, v.Elem())
		}
	case reflect.Ptr:
		if v.IsNil() {
			fmt.Fprintf(b, "(%s)(nil)", v.Type())
		} else {
			b.WriteString("&")
			writeTyped(b, v.Elem())
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			fmt.Fprintf(b, "%s(nil)", v.Type())
			return
		}
		if v.Type() == bytesType {
			fmt.Fprintf(b, "[]byte(%q)", v.Bytes())
			return
		}
		fmt.Fprintf(b, "%s{", v.Type())
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			writeTyped(b, v.Index(i))
		}
		b.WriteString("}")
	case reflect.Map:
		if v.IsNil() {
			fmt.Fprintf(b, "%s(nil)", v.Type())
			return
		}
		var entries []string
		iter := v.MapRange()
		for iter.Next() {
			entries = append(entries, typed(iter.Key().Interface())+": "+typed(iter.Value().Interface()))
		}
		sort.Strings(entries)
		fmt.Fprintf(b, "%s{%s}", v.Type(), strings.Join(entries, ", "))
	case reflect.Struct:
		fmt.Fprintf(b, "%s{", v.Type())
		for i := 0; i < v.NumField(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v.Type().Field(i).Name + ": ")
			writeTyped(b, v.Field(i))
		}
		b.WriteString("}")
	case reflect.String:
		fmt.Fprintf(b, "%q", v.String())
	default:
		fmt.Fprintf(b, "%s(%v)", v.Type(), v.Interface())
	}
}

// digest identifies a session's content and plan, so the check knows it regenerated the
// session the Rust side saw.
func (s *rtSession) digest() string {
	plan, err := json.Marshal(s.Plan)
	must(err)
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|%x|%q|%s|%s", s.ID, s.Store, s.Name, s.Pairs, s.FlashKeys, typed(s.Read), plan)
	return hex.EncodeToString(h.Sum(nil))
}

// ---- the two modes ----

func (s *rtSession) store(pairs [][]byte, dir string) sessions.Store {
	if s.Store == "filesystem" {
		return sessions.NewFilesystemStore(dir, pairs...)
	}
	return sessions.NewCookieStore(pairs...)
}

func hexPairs(pairs [][]byte) []string {
	out := make([]string, len(pairs))
	for i, k := range pairs {
		out[i] = hex.EncodeToString(k)
	}
	return out
}

// checkFailed is -roundtrip-check's exit code when a session failed, told apart from Go's own
// failures (a panic exits 2, run.sh without Go 1).
const checkFailed = 3

// roundTrip runs -roundtrip (check false) or -roundtrip-check; the process's exit code.
func roundTrip(check bool, seed int64, count int, dir string) int {
	if dir == "" {
		fmt.Fprintln(os.Stderr, "-roundtrip needs -dir (the FilesystemStore directory)")
		return 2
	}
	all := generate(seed, count)
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if !check {
		for _, s := range all {
			must(enc.Encode(map[string]interface{}{
				"id": s.ID, "store": s.Store, "cookie_name": s.Name, "pairs": hexPairs(s.Pairs),
				"rotation": s.Rotation, "flash_keys": s.FlashKeys, "cookie": s.save(dir),
				"plan": s.Plan, "go_types": s.GoTypes, "digest": s.digest(),
			}))
		}
		return 0
	}
	saved := map[string]savedLine{}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var line savedLine
		must(json.Unmarshal(in.Bytes(), &line))
		saved[line.ID] = line
	}
	must(in.Err())
	failed, byRule := 0, map[string]int{}
	for _, s := range all {
		failures := s.check(saved, dir)
		out := map[string]interface{}{"id": s.ID, "store": s.Store, "rotation": s.Rotation, "ok": len(failures) == 0}
		if len(failures) > 0 {
			failed++
			out["failures"] = failures
			out["plan"] = s.Plan
			if note := saved[s.ID].Note; note != "" {
				out["rust_note"] = note
			}
			for _, f := range failures {
				byRule[f.Rule]++
			}
		}
		must(enc.Encode(out))
	}
	must(enc.Encode(map[string]interface{}{"summary": true, "seed": seed, "sessions": len(all),
		"ok": len(all) - failed, "failed": failed, "failures_by_rule": byRule}))
	if failed > 0 {
		return checkFailed
	}
	return 0
}

type savedLine struct {
	ID     string `json:"id"`
	Cookie string `json:"cookie"`
	Digest string `json:"digest"` // optional: the digest -roundtrip wrote
	Note   string `json:"note"`   // optional: what the Rust side saw go wrong
}

type failure struct {
	Key           string `json:"key"`
	Rule          string `json:"rule"`
	Problem       string `json:"problem"`
	Expected      string `json:"expected,omitempty"`
	Got           string `json:"got,omitempty"`
	ExpectedTyped string `json:"expected_typed,omitempty"`
	GotTyped      string `json:"got_typed,omitempty"`
}

// save writes the session with the real store (the writer's pairs); the Set-Cookie value.
func (s *rtSession) save(dir string) string {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	session, err := s.store(s.Writer, dir).New(req, s.Name)
	must(err)
	for _, k := range s.Keys {
		session.Values[k] = s.Values[k]
	}
	for _, k := range s.FlashKeys {
		for _, item := range s.Flashes[k] {
			session.AddFlash(item, k)
		}
	}
	rec := httptest.NewRecorder()
	must(session.Save(req, rec))
	return cookieValue(rec.Header().Get("Set-Cookie"))
}

// check reads the Rust-saved session with the real store holding the newest pair only (a
// rotated cookie must have been rewritten) and compares it with the rules' values.
func (s *rtSession) check(saved map[string]savedLine, dir string) (failures []failure) {
	fail := func(key, rule, problem string) {
		failures = append(failures, failure{Key: key, Rule: rule, Problem: problem})
	}
	defer func() {
		if p := recover(); p != nil {
			fail("", "check", fmt.Sprintf("panic: %v", p))
		}
	}()
	line, ok := saved[s.ID]
	switch {
	case !ok:
		fail("", "rust", "no line from the Rust side")
		return
	case line.Digest != "" && line.Digest != s.digest():
		fail("", "check", "the check regenerated another session than the Rust side was given (digest)")
		return
	}
	want, rules, gone := s.expected()
	want = normalise(want)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: s.Name, Value: line.Cookie})
	session, err := s.store(s.Pairs[:2], dir).Get(req, s.Name)
	if err != nil {
		fail("", "read", "Go's store refused the Rust-saved session: "+err.Error())
		return
	}
	if session.IsNew {
		fail("", "read", "Go's store gave a new session")
		return
	}
	got := session.Values
	if meta, ok := got["_fastsession"]; ok {
		if _, isString := meta.(string); !isString {
			fail("_fastsession", "meta", fmt.Sprintf("the meta entry is %T, not a string", meta))
		}
		delete(got, "_fastsession")
	}
	isFlash := map[string]bool{}
	for _, k := range s.FlashKeys {
		isFlash[k] = true
		raw, present := got[k]
		list, problem := takeFlashes(session, k)
		if problem != "" {
			fail(k, "4", fmt.Sprintf("%s (the value is %s)", problem, typed(raw)))
			continue
		}
		expected, _ := want[k].([]interface{})
		if !sameList(expected, list) {
			rule := rules[k]
			if rule == "" {
				rule = gone[k]
			}
			if rule == "" {
				rule = "4"
			}
			f := differ(k, rule, "flash messages differ", expected, list)
			if !present {
				f.Problem = "flash messages missing"
			}
			failures = append(failures, f)
		}
	}
	for k, w := range want {
		if key, ok := k.(string); ok && isFlash[key] {
			continue
		}
		g, ok := got[k]
		if !ok {
			f := differ(keyText(k), rules[k], "missing", w, nil)
			f.Got, f.GotTyped = "", ""
			failures = append(failures, f)
			continue
		}
		if !same(reflect.ValueOf(w), reflect.ValueOf(g)) {
			failures = append(failures, differ(keyText(k), rules[k], "differs", w, g))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; ok {
			continue
		}
		rule := gone[k]
		if rule == "" {
			rule = "extra"
		}
		f := differ(keyText(k), rule, "should be gone", nil, g)
		f.Expected, f.ExpectedTyped = "", ""
		failures = append(failures, f)
	}
	sort.SliceStable(failures, func(i, j int) bool { return failures[i].Key < failures[j].Key })
	return failures
}

func keyText(k interface{}) string {
	if s, ok := k.(string); ok {
		return s
	}
	return typed(k)
}

func differ(key, rule, problem string, want, got interface{}) failure {
	return failure{Key: key, Rule: rule, Problem: problem,
		Expected: fmt.Sprintf("%#v", want), Got: fmt.Sprintf("%#v", got),
		ExpectedTyped: typed(want), GotTyped: typed(got)}
}

// takeFlashes is session.Flashes(key), which panics when the value is not []interface{}.
func takeFlashes(session *sessions.Session, key string) (list []interface{}, problem string) {
	defer func() {
		if p := recover(); p != nil {
			problem = fmt.Sprintf("session.Flashes(%q) panicked: %v", key, p)
		}
	}()
	return session.Flashes(key), ""
}

// sameList compares flash lists; nil and empty are the same list to Flashes' callers.
func sameList(a, b []interface{}) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !same(reflect.ValueOf(&a[i]).Elem(), reflect.ValueOf(&b[i]).Elem()) {
			return false
		}
	}
	return true
}

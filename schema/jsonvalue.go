package schema

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jkind is the type of a JSON value.
type jkind uint8

const (
	jInvalid jkind = iota // the zero value: absent
	jNull
	jBool
	jNumber
	jString
	jArray
	jObject
)

// jvalue is a decoded JSON value that keeps the order of object members.
// Configs and inputs are read in one pass into this tree instead of being
// re-scanned by encoding/json at every level. Strings decode exactly as
// encoding/json decodes them (invalid UTF-8 and lone surrogates become
// U+FFFD), so Validate sees what a schema validator built on encoding/json
// sees.
type jvalue struct {
	kind jkind
	str  string // a string's value, a number's literal, "true" or "false"
	// members are an object's members, duplicates kept in order, or an
	// array's elements (with empty keys).
	members []jmember
}

// jmember is one member of an object or element of an array.
type jmember struct {
	key string
	val jvalue
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// parseJSON decodes one JSON document.
func parseJSON(data []byte) (jvalue, error) {
	p := jparser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return jvalue{}, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return jvalue{}, p.errorf("unexpected %s after the JSON value", p.describe())
	}
	return v, nil
}

type jparser struct {
	data []byte
	pos  int
}

func (p *jparser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jparser) describe() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	return fmt.Sprintf("character %q", p.data[p.pos])
}

func (p *jparser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) value(depth int) (jvalue, error) {
	if depth >= maxDepth {
		return jvalue{}, p.errorf("nested too deeply")
	}
	if p.pos >= len(p.data) {
		return jvalue{}, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return jvalue{kind: jString, str: s}, err
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
				p.pos += len(lit)
				if lit == "null" {
					return jvalue{kind: jNull}, nil
				}
				return jvalue{kind: jBool, str: lit}, nil
			}
		}
		return jvalue{}, p.errorf("unexpected %s looking for a value", p.describe())
	}
}

func (p *jparser) object(depth int) (jvalue, error) {
	p.pos++ // {
	v := jvalue{kind: jObject, members: make([]jmember, 0, 4)}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return jvalue{}, p.errorf("unexpected %s looking for an object key", p.describe())
		}
		key, err := p.string()
		if err != nil {
			return jvalue{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return jvalue{}, p.errorf("unexpected %s after an object key", p.describe())
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth + 1)
		if err != nil {
			return jvalue{}, err
		}
		v.members = append(v.members, jmember{key, val})
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return v, nil
		}
		return jvalue{}, p.errorf("unexpected %s after an object member", p.describe())
	}
}

func (p *jparser) array(depth int) (jvalue, error) {
	p.pos++ // [
	v := jvalue{kind: jArray}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		v.members = []jmember{}
		return v, nil
	}
	for {
		p.skipSpace()
		el, err := p.value(depth + 1)
		if err != nil {
			return jvalue{}, err
		}
		v.members = append(v.members, jmember{val: el})
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		return jvalue{}, p.errorf("unexpected %s after an array element", p.describe())
	}
}

func (p *jparser) number() (jvalue, error) {
	start := p.pos
	d := p.data
	digits := func() int {
		n := 0
		for p.pos < len(d) && '0' <= d[p.pos] && d[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case digits() == 0:
		return jvalue{}, p.errorf("unexpected %s in a number", p.describe())
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return jvalue{}, p.errorf("unexpected %s after a decimal point", p.describe())
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return jvalue{}, p.errorf("unexpected %s in an exponent", p.describe())
		}
	}
	return jvalue{kind: jNumber, str: string(d[start:p.pos])}, nil
}

// string decodes a string starting at its opening quote.
func (p *jparser) string() (string, error) {
	p.pos++ // "
	start := p.pos
	d := p.data
	for p.pos < len(d) { // fast path: plain ASCII without escapes
		c := d[p.pos]
		if c == '"' {
			s := string(d[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.pos++
	}
	var b strings.Builder
	b.Write(d[start:p.pos])
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c < 0x20:
			return "", p.errorf("control character %q in a string", c)
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size == 1 {
				b.WriteRune(utf8.RuneError) // as encoding/json does
			} else {
				b.Write(d[p.pos : p.pos+size])
			}
			p.pos += size
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jparser) escape(b *strings.Builder) error {
	d := p.data
	if p.pos+1 >= len(d) {
		return p.errorf("unterminated string")
	}
	c := d[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		b.WriteByte(c)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, ok := hex4(d[p.pos:])
		if !ok {
			return p.errorf("invalid \\u escape")
		}
		p.pos += 4
		if utf16.IsSurrogate(r) {
			// A surrogate pair, or U+FFFD for a lone half (as encoding/json).
			if len(d) >= p.pos+6 && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
				if r2, ok := hex4(d[p.pos+2:]); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b.WriteRune(dec)
						p.pos += 6
						return nil
					}
				}
			}
			r = utf8.RuneError
		}
		b.WriteRune(r)
	default:
		p.pos -= 1
		return p.errorf("invalid escape \\%c", c)
	}
	return nil
}

func hex4(d []byte) (rune, bool) {
	if len(d) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// elems returns an array's elements.
func (v jvalue) elems() []jmember {
	if v.kind != jArray {
		return nil
	}
	return v.members
}

// get returns the last member named key (encoding/json's rule for
// duplicates), or the zero jvalue.
func (v jvalue) get(key string) (jvalue, bool) {
	if v.kind != jObject {
		return jvalue{}, false
	}
	for i := len(v.members) - 1; i >= 0; i-- {
		if v.members[i].key == key {
			return v.members[i].val, true
		}
	}
	return jvalue{}, false
}

// field returns a member for a struct-like read: an exact key match, else a
// case-insensitive one (as encoding/json matches struct fields).
func (v jvalue) field(key string) jvalue {
	if v.kind != jObject {
		return jvalue{}
	}
	fold := -1
	for i := len(v.members) - 1; i >= 0; i-- {
		k := v.members[i].key
		if len(k) != len(key) {
			continue
		}
		if k == key {
			return v.members[i].val
		}
		if fold < 0 && strings.EqualFold(k, key) {
			fold = i
		}
	}
	if fold >= 0 {
		return v.members[fold].val
	}
	return jvalue{}
}

// ordered returns an object's members with duplicates merged as JavaScript
// does: the position of the first, the value of the last.
func (v jvalue) ordered() []jmember {
	out := make([]jmember, 0, len(v.members))
	var index map[string]int
	if len(v.members) > 16 {
		index = make(map[string]int, len(v.members))
	}
	for _, m := range v.members {
		i := -1
		if index != nil {
			if j, ok := index[m.key]; ok {
				i = j
			}
		} else {
			for j := range out {
				if out[j].key == m.key {
					i = j
					break
				}
			}
		}
		if i >= 0 {
			out[i].val = m.val
			continue
		}
		if index != nil {
			index[m.key] = len(out)
		}
		out = append(out, m)
	}
	return out
}

// otherKeys returns an object's distinct keys for which known is false,
// sorted.
func (v jvalue) otherKeys(known func(string) bool) []string {
	var out []string
	for _, m := range v.members {
		if !known(m.key) {
			out = append(out, m.key)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// isNull reports whether v is absent or null.
func (v jvalue) isNull() bool { return v.kind == jInvalid || v.kind == jNull }

// describe names a JSON value for messages: `number 5`, `an array`.
func (v jvalue) describe() string {
	switch v.kind {
	case jInvalid:
		return "nothing"
	case jObject:
		return "an object"
	case jArray:
		return "an array"
	case jString:
		return "the string " + quote(v.str)
	case jNull:
		return "null"
	case jBool:
		return "boolean " + v.str
	default:
		return "number " + truncate(v.str, 40)
	}
}

package secret

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestMayUnescapeToIsSound checks the cheap test against the unescaping it
// spares, on many short random texts made of escape material: whenever
// unescaping makes the key appear, mayUnescapeTo must have said it might.
func TestMayUnescapeToIsSound(t *testing.T) {
	t.Parallel()
	pieces := []string{`\u005f`, `\u0025`, `\u0035`, `\u0046`, `\u0041`, `\u0062`, `\u00`, `\\`, `\"`, `\/`, `\n`, `\`,
		`%5F`, `%5f`, `%25`, `%41`, `%35`, `%2`, `%`, `5`, `F`, `f`, `A`, `u`, `b`, `p`, `_`, `x`, `"`}
	keys := [][]byte{[]byte("bp_"), []byte("p_A"), []byte("_"), []byte("%5F"), []byte(`b\n`), []byte("A")}
	rng := rand.New(rand.NewPCG(1, 2))
	found := 0
	for range 200000 {
		var b []byte
		for range 1 + rng.IntN(6) {
			b = append(b, pieces[rng.IntN(len(pieces))]...)
		}
		key := keys[rng.IntN(len(keys))]
		if bytes.Contains(b, key) {
			continue
		}
		if _, ok := unescapedWithKeyAllRounds(b, key); ok {
			found++
			if !mayUnescapeTo(b, key) {
				t.Fatalf("mayUnescapeTo(%q, %q) = false, but unescaping makes the key appear", b, key)
			}
		}
	}
	if found < 1000 {
		t.Fatalf("only %d texts unescape to a key; the test proves little", found)
	}
}

// unescapedWithKeyAllRounds is unescapedWithKey without the cheap test.
func unescapedWithKeyAllRounds(b, key []byte) ([]byte, bool) {
	for range maxUnescapeRounds {
		next, changed := unescapeJSON(b)
		next, pchanged := unescapePercent(next)
		if !changed && !pchanged {
			return nil, false
		}
		b = next
		if bytes.Contains(b, key) {
			return b, true
		}
	}
	return nil, false
}

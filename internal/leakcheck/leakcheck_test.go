package leakcheck

import "testing"

func TestFind(t *testing.T) {
	const key = "bp_k1"
	cases := []struct{ s, want string }{
		{"no secret here", ""},
		{"bp k1, bp-k1", ""},
		{"key=bp_k1;", "raw"},
		{`"bp\u005fk1"`, "json _"},
		{`\u0062\u0070\u005f\u006b\u0031`, "json all"},
		{`\u0062\u0070\u005F\u006B\u0031`, "json all upper"},
		{"?k=bp%5Fk1&", "percent _"},
		{"?k=bp%5fk1&", "percent _ lower"},
		{"%62%70%5F%6B%31", "percent all"},
		{"%62%70%5f%6b%31", "percent all lower"},
		{`bp\u00255Fk1`, "json percent _"},
	}
	for _, tc := range cases {
		if got := Find(tc.s, key); got != tc.want {
			t.Errorf("Find(%q) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

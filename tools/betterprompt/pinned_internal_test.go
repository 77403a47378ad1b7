package betterprompt

import (
	"strings"
	"testing"
)

func TestPinnedToolNames(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"cold-email-opener", "cold_email_opener"},
		{"One Message, Many Channels", "one_message_many_channels"},
		{"Rainy Café Window Portrait", "rainy_caf_window_portrait"},
		{"--Hello--", "hello"},
		{"日本語", ""},
		{strings.Repeat("ab-", 40), strings.TrimRight(strings.Repeat("ab_", 40)[:64], "_")},
	} {
		got := toolNameFrom(tc.in)
		if got != tc.want || (got != "" && !toolNameRule.MatchString(got)) {
			t.Errorf("toolNameFrom(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	taken := map[string]bool{"run_prompt": true, "x_2": true, "x": true, strings.Repeat("y", 64): true}
	for _, tc := range []struct{ in, want string }{
		{"fresh", "fresh"},
		{"run_prompt", "run_prompt_2"},
		{"x", "x_3"},
		{strings.Repeat("y", 64), strings.Repeat("y", 62) + "_2"},
	} {
		if got := uniqueName(tc.in, taken); got != tc.want || !toolNameRule.MatchString(got) {
			t.Errorf("uniqueName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package betterprompt_test

import (
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/internal/leakcheck"
)

// A key pasted into prompt_id is never echoed into the error, whatever the
// form of the pasted text: a link without its scheme, a header line, a link
// whose query percent-encodes the key.
func TestPromptIDNeverEchoesAKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const key = "bp_secret_key_1234567890ab"
	f := leakcheck.Forms(key)
	for _, v := range []string{
		"betterprompt.me/prompts/cold-email-opener?key=" + key,          // link without https://
		"Authorization: Bearer " + key,                                  // a header line
		"key=" + key,                                                    // a query fragment
		"https://betterprompt.me/?key=" + f["percent _"],                // percent-encoded in a link
		"https://betterprompt.me/p/x_y?api_key=" + f["percent _ lower"], // lower-case escapes
		"https://betterprompt.me/?k=" + f["percent all"],                // every character encoded
		f["percent _"], // bare, percent-encoded
	} {
		for _, tool := range []string{"get_prompt", "run_prompt"} {
			before := e.fake.Count("*")
			res := e.call(t, tool, map[string]any{"prompt_id": v})
			mustError(t, res)
			if form := leakcheck.Find(text(res), key); form != "" {
				t.Errorf("%s(prompt_id=%q): the key is echoed (%s): %s", tool, v, form, text(res))
			} else if low := strings.ToLower(text(res)); strings.Contains(low, "bp_secret") || strings.Contains(low, "bp%5fsecret") {
				t.Errorf("%s(prompt_id=%q): part of the key is echoed: %s", tool, v, text(res))
			}
			if n := e.fake.Count("*") - before; n != 0 {
				t.Errorf("%s(prompt_id=%q): %d requests sent", tool, v, n)
			}
		}
	}
}

// A link that ends with one prompt's slug but carries an unrelated id in
// its query (a referral, a tracking id, another prompt) must not reach the
// prompt of that other id.
func TestLinkSlugIsNotOverriddenByAQueryID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	link := "https://betterprompt.me/prompts/cold-email-opener?ref=" + twoVersionsPrompt
	res := e.call(t, "get_prompt", map[string]any{"prompt_id": link})
	if !res.IsError && !strings.Contains(text(res), coldEmailVersion) {
		t.Errorf("get_prompt(%s) reached another prompt than cold-email-opener: %s", link, text(res))
	}
}

// A link to a page that is not a prompt's (another site, a user page) is not
// taken for the slug of a prompt.
func TestForeignLinkIsNotASlug(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, link := range []string{
		"https://cdn.example.com/images/cold-email-opener", // e.g. a media link pasted by mistake
		"https://evil.example/cold-email-opener",
	} {
		before := e.fake.Count("*")
		res := e.call(t, "get_prompt", map[string]any{"prompt_id": link})
		if !res.IsError {
			t.Errorf("get_prompt(%s) reached a prompt: %s", link, text(res))
		}
		if n := e.fake.Count("*") - before; n != 0 {
			t.Errorf("get_prompt(%s): %d requests", link, n)
		}
	}
}

// Inputs refused before any request name the prompt they were for, also
// when prompt_id is a slug.
func TestInvalidInputsNameTheSlug(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := e.fake.Count("*")
	res := e.call(t, "run_prompt", map[string]any{"prompt_id": "cold-email-opener", "inputs": "x"})
	mustError(t, res, "cold-email-opener")
	if n := e.fake.Count("*") - before; n != 0 {
		t.Errorf("%d requests", n)
	}
}

package schema

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/bpapi"
)

// wantErr expects a FieldError on Field whose Message contains Contains.
type wantErr struct{ Field, Contains string }

// vcase is one Validate case for one config.
type vcase struct {
	name   string
	inputs string
	// accepted: the expected normalized textInputs and number of images.
	text   map[string]string
	images int
	// rejected: the expected field errors (at least these) and, when
	// nErrs > 0, their exact number.
	errs  []wantErr
	nErrs int
	// lenient marks inputs that Validate accepts in a non-canonical form the
	// schema rejects (see Config.Validate); the schema is not consulted.
	lenient bool
}

func (c vcase) accept() bool { return c.errs == nil }

const (
	img1      = `{"type":"url","url":"https://example.com/a.png"}`
	img2      = `{"type":"url","url":"https://example.com/b.png"}`
	pngBase64 = `iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==`
)

var validateCases = map[string][]vcase{
	"01-cold-email-opener": {
		{name: "all given", inputs: `{"textInputs":{"company_name":"Northwind","recipient_role":"Head of Ops","value_proposition":"We cut errors"}}`,
			text: map[string]string{"company_name": "Northwind", "recipient_role": "Head of Ops", "value_proposition": "We cut errors"}},
		{name: "missing required text", inputs: `{"textInputs":{"company_name":"Northwind","recipient_role":"Head of Ops"}}`,
			errs: []wantErr{{"textInputs.value_proposition", "required text input is missing (One sentence"}}, nErrs: 1},
		{name: "every problem listed", inputs: `{"textInputs":{}}`, nErrs: 3,
			errs: []wantErr{{"textInputs.company_name", "required"}, {"textInputs.recipient_role", "required"}, {"textInputs.value_proposition", "required"}}},
		{name: "no textInputs", inputs: `{}`, nErrs: 3, errs: []wantErr{{"textInputs.company_name", "required"}}},
		{name: "empty text without allowEmpty", inputs: `{"textInputs":{"company_name":"","recipient_role":"r","value_proposition":"v"}}`,
			errs: []wantErr{{"textInputs.company_name", "must not be empty"}}, nErrs: 1},
		{name: "non-string text", inputs: `{"textInputs":{"company_name":5,"recipient_role":true,"value_proposition":["v"]}}`, nErrs: 3,
			errs: []wantErr{{"textInputs.company_name", `must be a string, got number 5; send it as "5"`}, {"textInputs.recipient_role", "got boolean true"}, {"textInputs.value_proposition", "got an array"}}},
		{name: "null text", inputs: `{"textInputs":{"company_name":null,"recipient_role":"r","value_proposition":"v"}}`,
			errs: []wantErr{{"textInputs.company_name", "must be a string, got null"}}, nErrs: 1},
		{name: "unknown text key (typo)", inputs: `{"textInputs":{"compnay_name":"N","company_name":"N","recipient_role":"r","value_proposition":"v"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.compnay_name", `unknown key; did you mean "company_name"?; valid keys: "company_name", "recipient_role", "value_proposition"`}}},
		{name: "unknown top-level key", inputs: `{"textinputs":{},"textInputs":{"company_name":"N","recipient_role":"r","value_proposition":"v"}}`, nErrs: 1,
			errs: []wantErr{{"textinputs", `unknown key; did you mean "textInputs"?; inputs takes only "textInputs"`}}},
		{name: "images for a prompt without images", inputs: `{"textInputs":{"company_name":"N","recipient_role":"r","value_proposition":"v"},"imageInputs":[` + img1 + `]}`,
			errs: []wantErr{{"imageInputs", "this prompt takes no images, got 1"}}, nErrs: 1},
		{name: "textInputs not an object", inputs: `{"textInputs":["N"]}`, nErrs: 1,
			errs: []wantErr{{"textInputs", "must be an object mapping input keys to string values, got an array"}}},
		{name: "inputs not an object", inputs: `[1]`, nErrs: 1, errs: []wantErr{{"inputs", "must be an object"}}},
		{name: "inputs not JSON", inputs: `{"textInputs":`, nErrs: 1, errs: []wantErr{{"inputs", "is not valid JSON"}}, lenient: true},
		{name: "null inputs are empty", inputs: `null`, nErrs: 3, errs: []wantErr{{"textInputs.company_name", "required"}}, lenient: true},
		{name: "inputs as a JSON string", inputs: `"{\"textInputs\":{\"company_name\":\"N\",\"recipient_role\":\"r\",\"value_proposition\":\"v\"}}"`, lenient: true,
			text: map[string]string{"company_name": "N", "recipient_role": "r", "value_proposition": "v"}},
	},
	"02-podcast-episode-outline": {
		{name: "defaults filled", inputs: `{"textInputs":{"topic":"Why we procrastinate"}}`,
			text: map[string]string{"topic": "Why we procrastinate", "episode_length": "30 minutes", "audience": "curious non-experts who commute", "Output_language": "English"}},
		{name: "default overridden", inputs: `{"textInputs":{"topic":"t","Output_language":"French"}}`,
			text: map[string]string{"topic": "t", "episode_length": "30 minutes", "audience": "curious non-experts who commute", "Output_language": "French"}},
		{name: "empty optional text", inputs: `{"textInputs":{"topic":"t","episode_length":""}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.episode_length", `must not be empty; omit the key to use the default "30 minutes"`}}},
		{name: "required without textInputs", inputs: `{}`, nErrs: 1, errs: []wantErr{{"textInputs.topic", "required text input is missing (What the episode is about)"}}},
		{name: "key case matters", inputs: `{"textInputs":{"topic":"t","output_language":"French"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.output_language", `did you mean "Output_language"?`}}},
	},
	"03-release-notes-polisher": {
		{name: "allowEmpty accepts empty", inputs: `{"textInputs":{"raw_notes":"- fix","extra_context":""}}`,
			text: map[string]string{"raw_notes": "- fix", "extra_context": "", "product_name": "Acme Cloud"}},
		{name: "allowEmpty still required", inputs: `{"textInputs":{"raw_notes":"- fix"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.extra_context", "required text input is missing"}}},
		{name: "empty without allowEmpty", inputs: `{"textInputs":{"raw_notes":"","extra_context":""}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.raw_notes", "must not be empty"}}},
	},
	"04-ad-headline-variants": {
		{name: "selects", inputs: `{"textInputs":{"objective":"clicks","platform":"linkedin"}}`,
			text: map[string]string{"objective": "clicks", "platform": "linkedin", "product": "A weekly meal-kit subscription for busy parents"}},
		{name: "label instead of value", inputs: `{"textInputs":{"objective":"clicks","platform":"LinkedIn"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.platform", `use the value "linkedin", not the label "LinkedIn"`}}},
		{name: "label instead of value, other case", inputs: `{"textInputs":{"objective":"clicks","platform":"google ads"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.platform", `use the value "google", not the label "google ads"`}}},
		{name: "value in the wrong case", inputs: `{"textInputs":{"objective":"CLICKS","platform":"meta"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.objective", `values are case-sensitive: use "clicks", not "CLICKS"`}}},
		{name: "invalid select value", inputs: `{"textInputs":{"objective":"sales","platform":"meta"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.objective", `must be one of "clicks" (Clicks), "awareness" (Awareness), "conversions" (Conversions); got "sales"`}}},
		{name: "array for a single select", inputs: `{"textInputs":{"objective":["clicks"],"platform":"meta"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.objective", "must be one option value as a string, got an array"}}},
		{name: "missing select", inputs: `{"textInputs":{"objective":"clicks"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.platform", `required select is missing; choose one of "google" (Google Ads), "meta" (Meta (Facebook & Instagram)), "linkedin" (LinkedIn), "tiktok" (TikTok)`}}},
	},
	"05-one-message-many-channels": {
		{name: "array", inputs: `{"textInputs":{"message":"m","channels":["x","linkedin"]}}`,
			text: map[string]string{"message": "m", "channels": "x, linkedin"}},
		{name: "order kept", inputs: `{"textInputs":{"message":"m","channels":["newsletter","x","threads"]}}`,
			text: map[string]string{"message": "m", "channels": "newsletter, x, threads"}},
		{name: "below min", inputs: `{"textInputs":{"message":"m","channels":[]}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels", "choose at least 1 option, got 0"}}},
		{name: "above max", inputs: `{"textInputs":{"message":"m","channels":["x","instagram","linkedin","threads"]}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels", "choose at most 3 options, got 4"}}},
		{name: "duplicates", inputs: `{"textInputs":{"message":"m","channels":["x","linkedin","x"]}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels[2]", `"x" is chosen twice (also at [0])`}}},
		{name: "unknown item", inputs: `{"textInputs":{"message":"m","channels":["x","fax"]}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels[1]", `must be one of "x" (X (Twitter)), "instagram" (Instagram caption), "linkedin" (LinkedIn post), "threads" (Threads), "newsletter" (Email newsletter blurb); got "fax"`}}},
		{name: "label item", inputs: `{"textInputs":{"message":"m","channels":["X (Twitter)"]}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels[0]", `use the value "x", not the label "X (Twitter)"`}}},
		{name: "non-string item", inputs: `{"textInputs":{"message":"m","channels":["x",3]}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels[1]", "must be an option value as a string, got number 3"}}},
		{name: "object", inputs: `{"textInputs":{"message":"m","channels":{"x":true}}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels", "must be an array of option values, got an object; send an array of 1 to 3 of"}}},
		{name: "missing multi-select", inputs: `{"textInputs":{"message":"m"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.channels", "required select is missing; send an array of 1 to 3 of"}}},
		{name: "joined string", inputs: `{"textInputs":{"message":"m","channels":"x, linkedin"}}`, lenient: true,
			text: map[string]string{"message": "m", "channels": "x, linkedin"}},
		{name: "joined string without spaces", inputs: `{"textInputs":{"message":"m","channels":"linkedin,x"}}`, lenient: true,
			text: map[string]string{"message": "m", "channels": "linkedin, x"}},
		{name: "single string", inputs: `{"textInputs":{"message":"m","channels":"threads"}}`, lenient: true,
			text: map[string]string{"message": "m", "channels": "threads"}},
		{name: "joined string with unknown item", inputs: `{"textInputs":{"message":"m","channels":"x, fax"}}`, lenient: true, nErrs: 1,
			errs: []wantErr{{"textInputs.channels[1]", `got "fax"`}}},
		{name: "joined string above max", inputs: `{"textInputs":{"message":"m","channels":"x, instagram, linkedin, threads"}}`, lenient: true, nErrs: 1,
			errs: []wantErr{{"textInputs.channels", "choose at most 3 options, got 4"}}},
		{name: "empty string", inputs: `{"textInputs":{"message":"m","channels":""}}`, lenient: true, nErrs: 1,
			errs: []wantErr{{"textInputs.channels", "choose at least 1 option, got 0"}}},
	},
	"06-weekly-meal-planner": {
		{name: "option with commas in a single select", inputs: `{"textInputs":{"Activity_level":"Sedentary (desk job, little exercise)","Dietary_restrictions":["vegan","nut-free"]}}`,
			text: map[string]string{"Activity_level": "Sedentary (desk job, little exercise)", "Dietary_restrictions": "vegan, nut-free", "Daily_calories": "2000 kcal"}},
		{name: "multiple true needs one", inputs: `{"textInputs":{"Activity_level":"Moderate (exercise 3-5 days/week)","Dietary_restrictions":[]}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.Dietary_restrictions", "choose at least 1 option, got 0"}}},
		{name: "unbounded", inputs: `{"textInputs":{"Activity_level":"Moderate (exercise 3-5 days/week)","Dietary_restrictions":["vegetarian","vegan","gluten-free","dairy-free","nut-free","halal"]}}`,
			text: map[string]string{"Activity_level": "Moderate (exercise 3-5 days/week)", "Dietary_restrictions": "vegetarian, vegan, gluten-free, dairy-free, nut-free, halal", "Daily_calories": "2000 kcal"}},
		{name: "joined string", inputs: `{"textInputs":{"Activity_level":"Moderate (exercise 3-5 days/week)","Dietary_restrictions":"vegetarian, nut-free"}}`, lenient: true,
			text: map[string]string{"Activity_level": "Moderate (exercise 3-5 days/week)", "Dietary_restrictions": "vegetarian, nut-free", "Daily_calories": "2000 kcal"}},
	},
	"07-rainy-cafe-window-portrait": {
		{name: "url", inputs: `{"textInputs":{},"imageInputs":[` + img1 + `]}`, images: 1,
			text: map[string]string{"outfit": "Oversized camel coat over a cream turtleneck"}},
		{name: "no textInputs", inputs: `{"imageInputs":[` + img1 + `]}`, images: 1,
			text: map[string]string{"outfit": "Oversized camel coat over a cream turtleneck"}},
		{name: "plain base64", inputs: `{"imageInputs":[{"type":"base64","base64":"` + pngBase64 + `"}]}`, images: 1,
			text: map[string]string{"outfit": "Oversized camel coat over a cream turtleneck"}},
		{name: "unpadded base64", inputs: `{"imageInputs":[{"type":"base64","base64":"QUJDRA"}]}`, images: 1,
			text: map[string]string{"outfit": "Oversized camel coat over a cream turtleneck"}},
		{name: "data URI", inputs: `{"imageInputs":[{"type":"base64","base64":"data:image/png;base64,` + pngBase64 + `"}]}`, images: 1,
			text: map[string]string{"outfit": "Oversized camel coat over a cream turtleneck"}},
		{name: "no image", inputs: `{"textInputs":{}}`, nErrs: 1,
			errs: []wantErr{{"imageInputs", "expected exactly 1 image (1: A clear, front-facing photo of yourself (face fully visible, good light)), got 0"}}},
		{name: "two images", inputs: `{"imageInputs":[` + img1 + `,` + img2 + `]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs", "expected exactly 1 image"}}},
		{name: "ftp URL", inputs: `{"imageInputs":[{"type":"url","url":"ftp://example.com/a.png"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", `must be an absolute URL starting with https:// or http://, got "ftp://example.com/a.png"`}}},
		{name: "relative URL", inputs: `{"imageInputs":[{"type":"url","url":"/a.png"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", "must be an absolute URL"}}},
		{name: "URL without host", inputs: `{"imageInputs":[{"type":"url","url":"https:///a.png"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", "must be an http(s) URL with a host name and no spaces"}}},
		{name: "URL with a space", inputs: `{"imageInputs":[{"type":"url","url":"https://example.com/a b.png"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", "no spaces"}}},
		{name: "URL that does not parse", inputs: `{"imageInputs":[{"type":"url","url":"https://example.com/%zz"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", "is not a valid URL (invalid URL escape"}}},
		{name: "bad port", inputs: `{"imageInputs":[{"type":"url","url":"https://example.com:x/a.png"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", "with a host name"}}},
		{name: "bad base64", inputs: `{"imageInputs":[{"type":"base64","base64":"abc$"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", `is not valid Base64: unexpected character '$' at offset 3`}}},
		{name: "base64 of wrong length", inputs: `{"imageInputs":[{"type":"base64","base64":"QUJDR"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", "wrong length or padding"}}},
		{name: "base64 with bad padding", inputs: `{"imageInputs":[{"type":"base64","base64":"QUJ=="}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", "wrong length or padding"}}},
		{name: "base64 with line breaks", inputs: `{"imageInputs":[{"type":"base64","base64":"QUJD\nRA=="}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", "unexpected line break"}}},
		{name: "empty base64", inputs: `{"imageInputs":[{"type":"base64","base64":""}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", "must not be empty"}}},
		{name: "data URI without data", inputs: `{"imageInputs":[{"type":"base64","base64":"data:image/png;base64,"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", "must not be empty"}}},
		{name: "data URI of text", inputs: `{"imageInputs":[{"type":"base64","base64":"data:text/plain;base64,QUJD"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", "a data URI must start with data:image/<format>;base64,"}}},
		{name: "missing type", inputs: `{"imageInputs":[{"url":"https://example.com/a.png"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].type", `must be "url" or "base64", got nothing`}}},
		{name: "type in capitals", inputs: `{"imageInputs":[{"type":"URL","url":"https://example.com/a.png"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].type", `must be "url" or "base64", got the string "URL"`}}},
		{name: "extra key", inputs: `{"imageInputs":[{"type":"url","url":"https://example.com/a.png","base64":"QUJD"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].base64", `unknown key for a url image; it takes only "type" and "url"`}}},
		{name: "url missing", inputs: `{"imageInputs":[{"type":"url"}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", "is required for a url image"}}},
		{name: "url not a string", inputs: `{"imageInputs":[{"type":"url","url":7}]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0].url", "must be a string, got number 7"}}},
		{name: "image as a bare string", inputs: `{"imageInputs":["https://example.com/a.png"]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs[0]", `must be an object {"type":"url","url":"https://..."} or {"type":"base64","base64":"..."}, got the string`}}},
		{name: "imageInputs not an array", inputs: `{"imageInputs":` + img1 + `}`, nErrs: 1,
			errs: []wantErr{{"imageInputs", "must be an array of exactly 1 image"}}},
		{name: "text not a string and image missing", inputs: `{"textInputs":{"outfit":1}}`, nErrs: 2,
			errs: []wantErr{{"textInputs.outfit", "must be a string"}, {"imageInputs", "expected exactly 1 image"}}},
	},
	"08-photo-booth-strip-for-two": {
		{name: "two images", inputs: `{"imageInputs":[` + img1 + `,` + img2 + `]}`, images: 2, text: map[string]string{}},
		{name: "one image", inputs: `{"textInputs":{},"imageInputs":[` + img1 + `]}`, nErrs: 1,
			errs: []wantErr{{"imageInputs", "expected exactly 2 images (1: Your photo; 2: Your friend's or partner's photo), got 1"}}},
		{name: "text for a prompt without text", inputs: `{"textInputs":{"name":"Ann"},"imageInputs":[` + img1 + `,` + img2 + `]}`, nErrs: 1,
			errs: []wantErr{{"textInputs.name", `unknown key; this prompt takes no text inputs, send "textInputs": {}`}}},
		{name: "every bad image reported", inputs: `{"imageInputs":[{"type":"url","url":"ftp://a"},{"type":"base64","base64":"!"}]}`, nErrs: 2,
			errs: []wantErr{{"imageInputs[0].url", "https://"}, {"imageInputs[1].base64", "not valid Base64"}}},
		{name: "null imageInputs", inputs: `{"imageInputs":null}`, nErrs: 1, errs: []wantErr{{"imageInputs", "got 0"}}},
	},
	"09-isometric-app-icon": {
		{name: "valid", inputs: `{"textInputs":{"app_concept":"a habit tracker","style":"clay"}}`,
			text: map[string]string{"app_concept": "a habit tracker", "style": "clay", "primary_color": "#4F46E5"}},
		{name: "label", inputs: `{"textInputs":{"app_concept":"a","style":"Soft clay render"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.style", `use the value "clay", not the label "Soft clay render"`}}},
	},
	"10-accessible-alt-text-writer": {
		{name: "valid", inputs: `{"textInputs":{"focus":"the chart"},"imageInputs":[` + img1 + `]}`, images: 1,
			text: map[string]string{"focus": "the chart"}},
		{name: "text and image missing", inputs: `{}`, nErrs: 2,
			errs: []wantErr{{"textInputs.focus", "required"}, {"imageInputs", "expected exactly 1 image (1: Image to describe), got 0"}}},
	},
	"11-doorbell-camera-hello": {
		{name: "all defaults", inputs: `{"textInputs":{}}`, text: map[string]string{"subject": "A golden retriever carrying a rolled-up newspaper"}},
		{name: "empty inputs", inputs: `{}`, text: map[string]string{"subject": "A golden retriever carrying a rolled-up newspaper"}},
		{name: "null inputs", inputs: `null`, lenient: true, text: map[string]string{"subject": "A golden retriever carrying a rolled-up newspaper"}},
		{name: "absent inputs", inputs: ``, lenient: true, text: map[string]string{"subject": "A golden retriever carrying a rolled-up newspaper"}},
		{name: "null textInputs", inputs: `{"textInputs":null}`, lenient: true, text: map[string]string{"subject": "A golden retriever carrying a rolled-up newspaper"}},
		{name: "empty imageInputs", inputs: `{"imageInputs":[]}`, lenient: true, text: map[string]string{"subject": "A golden retriever carrying a rolled-up newspaper"}},
		{name: "imageInputs object", inputs: `{"imageInputs":{}}`, nErrs: 1, errs: []wantErr{{"imageInputs", "this prompt takes no images"}}},
	},
	"12-product-hero-clip": {
		{name: "valid", inputs: `{"textInputs":{"feature":"f","brand_color":"green","mood":"premium"},"imageInputs":[` + img1 + `]}`, images: 1,
			text: map[string]string{"feature": "f", "brand_color": "green", "mood": "premium"}},
		{name: "everything wrong at once", inputs: `{"textInputs":{"feature":"","mood":"Energetic","colour":"green"},"imageInputs":[],"runModel":"sora-2"}`, nErrs: 6,
			errs: []wantErr{
				{"runModel", `unknown key; inputs takes only "textInputs", "imageInputs" (runModel is a separate argument of the run, next to inputs)`},
				{"textInputs.feature", "must not be empty"},
				{"textInputs.brand_color", "required"},
				{"textInputs.mood", `use the value "energetic", not the label "Energetic"`},
				{"textInputs.colour", "unknown key"},
				{"imageInputs", "expected exactly 1 image (1: Clean photo of your product on a plain background), got 0"},
			}},
	},
	// Catalogue fixtures that add cases the §11 examples do not have.
	"catalogue-customer-reply-drafter-327817b7": {
		{name: "options with commas", inputs: `{"textInputs":{"customer_message":"m","tone":["Warm, friendly","Short and direct"],"reply_channel":"email"}}`,
			text: map[string]string{"customer_message": "m", "tone": "Warm, friendly, Short and direct", "reply_channel": "email"}},
		{name: "joined string with an option containing a comma", inputs: `{"textInputs":{"customer_message":"m","tone":"Warm, friendly, Short and direct","reply_channel":"email"}}`, lenient: true,
			text: map[string]string{"customer_message": "m", "tone": "Warm, friendly, Short and direct", "reply_channel": "email"}},
		{name: "joined string, comma option last", inputs: `{"textInputs":{"customer_message":"m","tone":"Formal,Warm, friendly","reply_channel":"sms"}}`, lenient: true,
			text: map[string]string{"customer_message": "m", "tone": "Formal, Warm, friendly", "reply_channel": "sms"}},
		{name: "exactly two", inputs: `{"textInputs":{"customer_message":"m","tone":["Formal"],"reply_channel":"email"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.tone", "choose at least 2 options, got 1; send an array of exactly 2 of"}}},
		{name: "type 1 is a select", inputs: `{"textInputs":{"customer_message":"m","tone":["Formal","Apologetic"],"reply_channel":"fax"}}`, nErrs: 1,
			errs: []wantErr{{"textInputs.reply_channel", `got "fax"`}}},
	},
	"catalogue-whiteboard-photo-to-notes-bdaa1c14": {
		{name: "optional JTD text left out", inputs: `{"textInputs":{"meeting_topic":"Q3"},"imageInputs":[` + img1 + `]}`, images: 1,
			text: map[string]string{"meeting_topic": "Q3"}},
		{name: "optional JTD text given", inputs: `{"textInputs":{"meeting_topic":"Q3","audience":"execs"},"imageInputs":[` + img1 + `]}`, images: 1,
			text: map[string]string{"meeting_topic": "Q3", "audience": "execs"}},
		{name: "optional JTD text empty", inputs: `{"textInputs":{"meeting_topic":"Q3","audience":""},"imageInputs":[` + img1 + `]}`, nErrs: 1,
			errs: []wantErr{{"textInputs.audience", "must not be empty; omit the key to leave this optional input out"}}},
		{name: "metadata imageCount", inputs: `{"textInputs":{"meeting_topic":"Q3"}}`, nErrs: 1,
			errs: []wantErr{{"imageInputs", "expected exactly 1 image (1: any image), got 0"}}},
	},
	"catalogue-trip-packing-list-08f1255d": {
		{name: "bare string default", inputs: `{"textInputs":{"destination":"Madeira","activities":["hiking","beach"]}}`,
			text: map[string]string{"destination": "Madeira", "trip_length": "5 days", "activities": "hiking, beach"}},
	},
	"catalogue-random-startup-idea-71cb89e9": {
		{name: "no inputs", inputs: `{"textInputs":{}}`, text: map[string]string{}},
		{name: "stray key", inputs: `{"textInputs":{"idea":"x"}}`, nErrs: 1, errs: []wantErr{{"textInputs.idea", "this prompt takes no text inputs"}}},
	},
}

func TestValidateCases(t *testing.T) {
	configs := map[string]json.RawMessage{}
	for _, nc := range append(exampleConfigs(t), catalogueConfigs(t)...) {
		configs[nc.name] = nc.raw
	}
	for name, cases := range validateCases {
		raw, ok := configs[name]
		if !ok {
			t.Errorf("no config %s", name)
			continue
		}
		cfg, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sch := compile(t, cfg.InputSchema(nil))
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				got, err := cfg.Validate(json.RawMessage(tc.inputs))
				checkValidate(t, tc, got, err)
				if tc.lenient {
					return
				}
				ok, serr := schemaAccepts(t, sch, []byte(tc.inputs))
				if ok != tc.accept() {
					t.Errorf("schema accepts=%v, want %v (%v)", ok, tc.accept(), serr)
				}
			})
		}
	}
}

// checkValidate compares Validate's result with the case.
func checkValidate(t *testing.T, tc vcase, got bpapi.RunInputs, err error) {
	t.Helper()
	if tc.accept() {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if !maps.Equal(got.TextInputs, tc.text) || got.TextInputs == nil {
			t.Errorf("textInputs = %#v, want %#v", got.TextInputs, tc.text)
		}
		if len(got.ImageInputs) != tc.images {
			t.Errorf("%d images, want %d", len(got.ImageInputs), tc.images)
		}
		return
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate error = %v (%T), want a *ValidationError", err, err)
	}
	if got.TextInputs != nil || got.ImageInputs != nil {
		t.Errorf("inputs returned with an error: %#v", got)
	}
	if tc.nErrs > 0 && len(ve.Errors) != tc.nErrs {
		t.Errorf("%d errors, want %d: %v", len(ve.Errors), tc.nErrs, err)
	}
	for _, w := range tc.errs {
		found := false
		for _, fe := range ve.Errors {
			found = found || (fe.Field == w.Field && strings.Contains(fe.Message, w.Contains))
		}
		if !found {
			t.Errorf("no error %s: …%s…\ngot: %v", w.Field, w.Contains, err)
		}
	}
	for _, fe := range ve.Errors {
		if strings.Contains(fe.Message, "{") && strings.Contains(fe.Message, "0x") || strings.Contains(fe.Message, "map[") || strings.Contains(fe.Message, "[]") {
			t.Errorf("message looks like a Go value: %q", fe.Message)
		}
	}
}

func TestValidationErrorFormat(t *testing.T) {
	cfg := mustParse(t, `{"variables":{"tone":{"type":2,"options":{"friendly":"Friendly","formal":"Formal"}},"my key":{"type":0}}}`)
	_, err := cfg.Validate(json.RawMessage(`{"textInputs":{"tone":"casual"}}`))
	want := `textInputs.tone: must be one of "friendly" (Friendly), "formal" (Formal); got "casual"; textInputs["my key"]: required text input is missing`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	if got := (FieldError{Message: "m"}).Error(); got != "m" {
		t.Errorf("FieldError without field = %q", got)
	}
}

func TestValidateRunOptions(t *testing.T) {
	models := goldenModels(t)
	gptImage := findModel(models, "gpt-image-1")
	mini := findModel(models, "gpt-4.1-mini")
	var cfg *Config // run options do not depend on the config
	tests := []struct {
		name  string
		model *bpapi.Model
		opts  map[string]string
		errs  []string
	}{
		{"nil model accepts anything", nil, map[string]string{"whatever": "x"}, nil},
		{"no options", gptImage, nil, nil},
		{"valid", gptImage, map[string]string{"size": "1024x1024", "quality": "low"}, nil},
		{"bad value", gptImage, map[string]string{"size": "512x512"}, []string{`runOptions.size: must be one of "1024x1024", "1024x1536", "1536x1024", "auto"; got "512x512"`}},
		{"unknown key", gptImage, map[string]string{"qualty": "low", "aspectRatio": "1:1"}, []string{
			`runOptions.aspectRatio: model gpt-image-1 has no run option "aspectRatio"; valid keys: "size", "quality"`,
			`runOptions.qualty: model gpt-image-1 has no run option "qualty"; did you mean "quality"?`}},
		{"model without options", mini, map[string]string{"reasoningEffort": "low"}, []string{"runOptions.reasoningEffort: model gpt-4.1-mini takes no run options"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := cfg.ValidateRunOptions(tc.model, tc.opts)
			if tc.errs == nil {
				if err != nil {
					t.Fatalf("ValidateRunOptions: %v", err)
				}
				if tc.model != nil && len(tc.opts) > 0 {
					sch := compile(t, cfg.RunOptionsSchema(tc.model))
					if ok, serr := schemaAccepts(t, sch, mustJSON(t, tc.opts)); !ok {
						t.Errorf("schema rejects: %v", serr)
					}
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != len(tc.errs) {
				t.Fatalf("error = %v, want %d field errors", err, len(tc.errs))
			}
			for i, w := range tc.errs {
				if !strings.HasPrefix(ve.Errors[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, ve.Errors[i].Error(), w)
				}
			}
			if len(tc.model.AvailableRunOptions) > 0 {
				sch := compile(t, cfg.RunOptionsSchema(tc.model))
				if ok, _ := schemaAccepts(t, sch, mustJSON(t, tc.opts)); ok {
					t.Errorf("schema accepts what ValidateRunOptions rejects")
				}
			}
		})
	}
	if s := cfg.RunOptionsSchema(nil); s != nil {
		t.Errorf("RunOptionsSchema(nil) = %v", s)
	}
	if s := cfg.RunOptionsSchema(mini); s != nil {
		t.Errorf("RunOptionsSchema(model without options) = %v", s)
	}
}

// TestExampleValid checks that Example passes Validate and the schema for
// every example and catalogue config.
func TestExampleValid(t *testing.T) {
	for _, nc := range append(exampleConfigs(t), catalogueConfigs(t)...) {
		t.Run(nc.name, func(t *testing.T) {
			cfg, err := Parse(nc.raw)
			if err != nil {
				t.Fatal(err)
			}
			checkExample(t, cfg)
		})
	}
	cfg := mustParse(t, `{"variables":{"company_name":{"type":0},"tone":{"type":2,"options":{"a":"A","b":"B"}},"ch":{"type":2,"multiple":{"min":2},"options":{"a":"A","b":"B","c":"C"}}},"images":[{}]}`)
	want := `{"imageInputs":[{"type":"url","url":"https://example.com/image-1.png"}],"textInputs":{"ch":["a","b"],"company_name":"Example company name","tone":"a"}}`
	if got := string(mustJSON(t, cfg.Example())); got != want {
		t.Errorf("Example() = %s\nwant        %s", got, want)
	}
}

func checkExample(t testing.TB, cfg *Config) {
	t.Helper()
	ex := mustJSON(t, cfg.Example())
	if _, err := cfg.Validate(ex); err != nil {
		t.Errorf("Validate(Example()) = %v\nexample: %s", err, ex)
	}
	sch := compile(t, cfg.InputSchema(nil))
	if ok, err := schemaAccepts(t, sch, ex); !ok {
		t.Errorf("schema rejects Example(): %v\nexample: %s", err, ex)
	}
}

func TestValidationErrorIsBounded(t *testing.T) {
	cfg := mustParse(t, `{"variables":{"topic":{"type":0}}}`)
	var b strings.Builder
	b.WriteString(`{"textInputs":{"topic":"t"`)
	for i := range 500 {
		b.WriteString(`,"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `_` + string(rune('0'+i%10)) + `":1`)
	}
	b.WriteString(`}}`)
	_, err := cfg.Validate(json.RawMessage(b.String()))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != maxFieldErrors+1 {
		t.Fatalf("want %d errors and a summary, got %v", maxFieldErrors, err)
	}
	if last := ve.Errors[len(ve.Errors)-1]; last.Field != "" || !strings.HasPrefix(last.Message, "and ") || !strings.HasSuffix(last.Message, " more problems") {
		t.Errorf("last error = %+v", last)
	}
}

package schema

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Inputs is a run's inputs argument, parsed once: the checks that need no
// configuration (ParseInputs) and the validation against a prompt's
// configuration (Config.ValidateInputs) read the same tree, which matters
// when inputs carry megabytes of Base64 images.
type Inputs struct {
	root jvalue
}

// Limits bound the sizes of a run's inputs beyond what their shape allows
// (0 means no bound), so that no input can carry megabytes of text upstream.
type Limits struct {
	MaxTextRunes int // per text value (each item of a multi-choice)
	MaxURLBytes  int // per image URL
}

// ParseInputs parses a run's inputs and checks what can be checked without
// the prompt's configuration: that inputs is an object with only textInputs
// and imageInputs, that every text value is a string or an array of
// strings, that every image is a well-formed {type:"url"} (http or https)
// or {type:"base64"} item within MaxImageBytes, and that sizes are within
// lim. The server calls it before fetching the configuration, so such
// mistakes cost no request at all; Config.ValidateInputs then checks the
// rest (keys, required inputs, choices, counts). The error is a
// *ValidationError.
func ParseInputs(raw json.RawMessage, lim Limits) (*Inputs, error) {
	var errs collector
	root, ok := decodeInputs(raw, &errs)
	if !ok {
		return nil, errs.err()
	}
	for _, k := range root.otherKeys(func(k string) bool { return k == "textInputs" || k == "imageInputs" }) {
		errs.add(k, "unknown key%s; inputs takes only \"textInputs\" and \"imageInputs\"",
			didYouMean(k, []string{"textInputs", "imageInputs"}))
	}
	if text, _ := root.get("textInputs"); !text.isNull() && text.kind != jInvalid {
		if text.kind != jObject {
			errs.add("textInputs", "must be an object mapping input keys to string values, got %s", text.describe())
		}
		for _, m := range text.members {
			if !isTextValue(m.val) {
				errs.add(textField(m.key), "must be a string (or, for a multi-choice input, an array of strings), got %s", m.val.describe())
			} else if n := longestText(m.val); lim.MaxTextRunes > 0 && n > lim.MaxTextRunes {
				errs.add(textField(m.key), "is %d characters; the limit is %d", n, lim.MaxTextRunes)
			}
		}
	}
	if images, _ := root.get("imageInputs"); images.kind == jArray {
		for i, it := range images.elems() {
			field := "imageInputs[" + strconv.Itoa(i) + "]"
			if url := it.val.field("url"); lim.MaxURLBytes > 0 && url.kind == jString && len(url.str) > lim.MaxURLBytes {
				errs.add(field+".url", "is %d characters; the limit is %d", len(url.str), lim.MaxURLBytes)
				continue
			}
			validateImage(field, it.val, &errs)
		}
	} else if !images.isNull() && images.kind != jInvalid {
		errs.add("imageInputs", "must be an array of images, got %s", images.describe())
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return &Inputs{root: root}, nil
}

// longestText returns the length in runes of a text value, or of its
// longest item.
func longestText(v jvalue) int {
	if v.kind == jString {
		return utf8.RuneCountInString(v.str)
	}
	longest := 0
	for _, e := range v.elems() {
		longest = max(longest, utf8.RuneCountInString(e.val.str))
	}
	return longest
}

// isTextValue reports whether v can be a text input's value.
func isTextValue(v jvalue) bool {
	switch v.kind {
	case jString, jNull:
		return true
	case jArray:
		for _, e := range v.elems() {
			if e.val.kind != jString {
				return false
			}
		}
		return true
	}
	return false
}

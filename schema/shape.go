package schema

import (
	"encoding/json"
	"strconv"
)

// CheckShape checks what can be checked of a run's inputs without the
// prompt's configuration: that inputs is an object with only textInputs and
// imageInputs, that every text value is a string or an array of strings,
// and that every image is a well-formed {type:"url"} (http or https) or
// {type:"base64"} item within MaxImageBytes. The server calls it before
// fetching the configuration, so such mistakes cost no request at all;
// Validate then checks the rest (keys, required inputs, choices, counts).
// It returns nil or a *ValidationError.
func CheckShape(inputs json.RawMessage) error {
	var errs collector
	root, ok := decodeInputs(inputs, &errs)
	if !ok {
		return errs.err()
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
			}
		}
	}
	if images, _ := root.get("imageInputs"); images.kind == jArray {
		for i, it := range images.elems() {
			validateImage("imageInputs["+strconv.Itoa(i)+"]", it.val, &errs)
		}
	} else if !images.isNull() && images.kind != jInvalid {
		errs.add("imageInputs", "must be an array of images, got %s", images.describe())
	}
	return errs.err()
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

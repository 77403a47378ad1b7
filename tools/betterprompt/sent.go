package betterprompt

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/tools"
)

// sentView is the inputs a run was sent, for the result's inputs_sent:
// text as sent, image URLs as sent, and Base64 images by their size only
// (their bytes are the caller's own and would only fill the result).
func sentView(in bpapi.RunInputs) map[string]any {
	text := in.TextInputs
	if text == nil {
		text = map[string]string{}
	}
	out := map[string]any{"textInputs": text}
	if len(in.ImageInputs) > 0 {
		images := make([]map[string]string, len(in.ImageInputs))
		for i, im := range in.ImageInputs {
			switch im.Type {
			case "base64":
				images[i] = map[string]string{"type": im.Type, "base64": fmt.Sprintf("(%d characters, not repeated)", len(im.Base64))}
			default:
				images[i] = map[string]string{"type": im.Type, "url": im.URL}
			}
		}
		out["imageInputs"] = images
	}
	return out
}

// normalisations lists what checking the inputs changed before they were
// sent: a default filled in, a list of choices joined into one value, a
// value trimmed. given is the caller's inputs argument.
func normalisations(given json.RawMessage, sent bpapi.RunInputs) []string {
	var in struct {
		TextInputs map[string]json.RawMessage `json:"textInputs"`
	}
	var encoded string
	if json.Unmarshal(given, &encoded) == nil {
		given = json.RawMessage(encoded) // inputs sent as a JSON string, which the checks accept too
	}
	if json.Unmarshal(given, &in) != nil {
		return nil // inputs were parsed already; a shape this cannot read has nothing to note
	}
	var notes []string
	for _, k := range slices.Sorted(maps.Keys(sent.TextInputs)) {
		v := sent.TextInputs[k]
		raw, ok := in.TextInputs[k]
		if !ok {
			notes = append(notes, fmt.Sprintf("textInputs.%s: not given, the prompt's default %s was sent", k, tools.Excerpt(v, 60)))
			continue
		}
		var list []string
		var s string
		switch {
		case json.Unmarshal(raw, &list) == nil:
			what := fmt.Sprintf("the %d choices were", len(list))
			if len(list) == 1 {
				what = "the choice was"
			}
			notes = append(notes, fmt.Sprintf("textInputs.%s: %s sent as one value, %s", k, what, tools.Excerpt(v, 80)))
		case json.Unmarshal(raw, &s) == nil && s != v:
			if strings.TrimSpace(s) == "" {
				notes = append(notes, fmt.Sprintf("textInputs.%s: empty, the prompt's default %s was sent", k, tools.Excerpt(v, 60)))
			} else {
				notes = append(notes, fmt.Sprintf("textInputs.%s: sent as %s", k, tools.Excerpt(v, 80)))
			}
		}
	}
	return notes
}

package fakeapi

import (
	"encoding/json"
	"fmt"
	"slices"
)

// resourcesJSON is the GET /v1/resources answer: the fixture of reference
// §10.4, byte for byte (including "hash" and data.resources.models).
const resourcesJSON = `{
  "status": "SUCCESS",
  "data": {
    "hash": "r-2026-03-01-a",
    "resources": {
      "models": [
        { "model": "gpt-4.1-mini", "modality": "text", "availableRunOptions": [] },
        { "model": "gpt-4o", "modality": "text", "availableRunOptions": [] },
        { "model": "gpt-5", "modality": "text",
          "availableRunOptions": [ { "key": "reasoningEffort", "options": ["minimal", "low", "medium", "high"] } ] },
        { "model": "gpt-5-nano", "modality": "text",
          "availableRunOptions": [ { "key": "reasoningEffort", "options": ["minimal", "low", "medium", "high"] } ] },
        { "model": "gpt-5.2", "modality": "text",
          "availableRunOptions": [ { "key": "reasoningEffort", "options": ["none", "low", "medium", "high", "xhigh"] } ] },
        { "model": "grok-4-fast", "modality": "text",
          "availableRunOptions": [ { "key": "reasoningEffort", "options": ["none", "low", "medium", "high"] } ] },
        { "model": "gemini-2.5-flash-image-preview", "modality": "image",
          "availableRunOptions": [ { "key": "aspectRatio",
            "options": ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9"] } ] },
        { "model": "gemini-3-pro-image-preview", "modality": "image",
          "availableRunOptions": [
            { "key": "aspectRatio", "options": ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9"] },
            { "key": "resolution", "options": ["1K", "2K"] } ] },
        { "model": "gpt-image-1", "modality": "image",
          "availableRunOptions": [
            { "key": "size", "options": ["1024x1024", "1024x1536", "1536x1024", "auto"] },
            { "key": "quality", "options": ["low", "medium", "high", "auto"] } ] },
        { "model": "sora-2", "modality": "video",
          "availableRunOptions": [
            { "key": "seconds", "options": ["4", "8", "12"] },
            { "key": "size", "options": ["720x1280", "1280x720"] } ] }
      ]
    }
  }
}
`

// ResourcesJSON returns the exact body the fake serves at GET /v1/resources.
func ResourcesJSON() []byte { return []byte(resourcesJSON) }

// resourceModel is one entry of data.resources.models.
type resourceModel struct {
	Model               string `json:"model"`
	Modality            string `json:"modality"`
	AvailableRunOptions []struct {
		Key     string   `json:"key"`
		Options []string `json:"options"`
	} `json:"availableRunOptions"`
}

// checkOption returns "" when key=value is a valid run option of m, else
// the validation message.
func (m *resourceModel) checkOption(key, value string) string {
	for _, o := range m.AvailableRunOptions {
		if o.Key == key {
			if slices.Contains(o.Options, value) {
				return ""
			}
			return fmt.Sprintf("Invalid runOptions value '%s' for key '%s' (model %s)", value, key, m.Model)
		}
	}
	return fmt.Sprintf("Invalid runOptions key '%s' for model %s", key, m.Model)
}

type resourceSet struct{ models []resourceModel }

func (r resourceSet) model(name string) (*resourceModel, bool) {
	for i := range r.models {
		if r.models[i].Model == name {
			return &r.models[i], true
		}
	}
	return nil, false
}

var fixtureResources = func() resourceSet {
	var env struct {
		Data struct {
			Resources struct {
				Models []resourceModel `json:"models"`
			} `json:"resources"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(resourcesJSON), &env); err != nil {
		panic("fakeapi: bad resources fixture: " + err.Error())
	}
	return resourceSet{models: env.Data.Resources.Models}
}()

package betterprompt

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/invopop/jsonschema"

	"github.com/bpmcp/bpmcp/bpapi"
)

// promptFacts is what the server knows about a published prompt besides its
// inputs: its type, its price and its default model and run options. The
// documented prompt routes carry none of it; search rows carry the type and
// price, and other shapes may carry the rest. Each field is empty when
// nothing seen so far said it.
type promptFacts struct {
	Modality          string // "text", "image" or "video"
	EstimatedCredits  *int
	Model             string // the default model's name
	DefaultRunOptions map[string]string
}

// merge returns f with every field that g knows taken from g.
func (f promptFacts) merge(g promptFacts) promptFacts {
	if g.Modality != "" {
		f.Modality = g.Modality
	}
	if g.EstimatedCredits != nil {
		n := *g.EstimatedCredits
		f.EstimatedCredits = &n
	}
	if g.Model != "" {
		f.Model = g.Model
	}
	if g.DefaultRunOptions != nil {
		f.DefaultRunOptions = g.DefaultRunOptions
	}
	return f
}

func (f promptFacts) empty() bool {
	return f.Modality == "" && f.EstimatedCredits == nil && f.Model == "" && f.DefaultRunOptions == nil
}

// complete reports whether a lookup could add nothing a search row gives.
func (f promptFacts) complete() bool { return f.Modality != "" && f.EstimatedCredits != nil }

func factsOfRow(r bpapi.PromptSummary) promptFacts {
	return promptFacts{Modality: string(r.Modality), EstimatedCredits: r.EstimatedCredits, Model: r.Model.Name,
		DefaultRunOptions: r.DefaultRunOptions}
}

// factsOfSkill reads a skills row; modality is the type the row was
// searched with, when the row does not say its own.
func factsOfSkill(s bpapi.Skill, modality string) promptFacts {
	f := promptFacts{Modality: string(s.Modality), EstimatedCredits: s.EstimatedCredits, Model: s.Model.Name,
		DefaultRunOptions: s.DefaultRunOptions}
	if f.Modality == "" {
		f.Modality = modality
	}
	return f
}

// factCache keeps promptFacts by prompt id. What it holds is public
// marketplace data, the same for every caller, so it is shared by all.
type factCache struct {
	mu      sync.Mutex
	entries map[string]promptFacts
}

const maxFacts = 4096

func (c *factCache) learn(promptID string, f promptFacts) {
	if promptID == "" || f.empty() {
		return
	}
	id := strings.ToLower(promptID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxFacts {
		c.entries = make(map[string]promptFacts) // bounded; a search relearns what it needs
	}
	c.entries[id] = c.entries[id].merge(f)
}

func (c *factCache) get(promptID string) promptFacts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[strings.ToLower(promptID)]
}

// factsFor returns what is known about pv's prompt, looking it up when
// nothing seen so far gave its type and price: a search by its title finds
// its row (text and image prompts), and a search of video prompts finds
// its type (video rows give no price). A lookup that fails leaves the facts
// as they were: it never fails the call.
func (d *Toolset) factsFor(ctx context.Context, c *bpapi.Client, pv *bpapi.PromptVersion) promptFacts {
	if f := d.facts.get(pv.PromptID); f.complete() {
		return f
	}
	q := strings.TrimSpace(pv.Title)
	if utf8.RuneCountInString(q) > maxQueryLength {
		q = string([]rune(q)[:maxQueryLength])
	}
	if q == "" {
		return d.facts.get(pv.PromptID)
	}
	if rows, err := c.SearchPrompts(ctx, q); err == nil {
		for _, r := range rows {
			d.facts.learn(r.PromptID, factsOfRow(r))
		}
	} else {
		d.logger().Debug("prompt facts: search by title failed", "prompt", pv.PromptID, "err", briefError(err))
	}
	if f := d.facts.get(pv.PromptID); f.Modality != "" || utf8.RuneCountInString(q) < 3 {
		return f
	}
	if rows, err := c.SearchSkills(ctx, q, "video"); err == nil {
		for _, r := range rows {
			d.facts.learn(r.SkillID, factsOfSkill(r, "video"))
		}
	} else {
		d.logger().Debug("prompt facts: video search by title failed", "prompt", pv.PromptID, "err", briefError(err))
	}
	return d.facts.get(pv.PromptID)
}

// runOptionModels returns the models whose run options apply to a prompt
// with facts f: its default model when /v1/resources lists it, else every
// model of its modality (the default is then one of them), else none.
func runOptionModels(res *bpapi.Resources, f promptFacts) (models []bpapi.Model, exact bool) {
	if res == nil {
		return nil, false
	}
	if m := res.FindModel(f.Model); m != nil {
		return []bpapi.Model{*m}, true
	}
	if f.Modality == "" {
		return nil, false
	}
	for _, m := range res.Models {
		if m.Modality == f.Modality {
			models = append(models, m)
		}
	}
	return models, false
}

// optionUnion is every run-option key that some of models take, with every
// value any of them accepts and the models that take it.
type optionUnion struct {
	Key    string
	Values []string
	Models []string
}

func unionOptions(models []bpapi.Model) []optionUnion {
	byKey := map[string]*optionUnion{}
	var keys []string
	for _, m := range models {
		seen := map[string]bool{}
		for _, ro := range m.AvailableRunOptions {
			if len(ro.Options) == 0 || seen[ro.Key] {
				continue
			}
			seen[ro.Key] = true
			u := byKey[ro.Key]
			if u == nil {
				u = &optionUnion{Key: ro.Key}
				byKey[ro.Key] = u
				keys = append(keys, ro.Key)
			}
			u.Models = append(u.Models, m.Model)
			for _, v := range ro.Options {
				if !slices.Contains(u.Values, v) {
					u.Values = append(u.Values, v)
				}
			}
		}
	}
	sort.Strings(keys)
	out := make([]optionUnion, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
	}
	return out
}

// runOptionsSchema is the JSON Schema of run_options for a prompt whose run
// options are those of models: exactly its default model's (exact), or any
// of its modality's, each key naming the models that take it.
func runOptionsSchema(models []bpapi.Model, exact bool, modality string) *jsonschema.Schema {
	s := &jsonschema.Schema{Type: "object", Properties: jsonschema.NewProperties(), AdditionalProperties: jsonschema.FalseSchema}
	opts := unionOptions(models)
	switch {
	case exact && len(opts) == 0:
		s.Description = "Model " + models[0].Model + " takes no run options."
	case exact:
		s.Description = "Run options of model " + models[0].Model + ", the prompt's default; leave one out to keep the prompt's value."
	default:
		s.Description = "Run options of " + modality + " models. Which keys a run accepts depends on its model, which " +
			"BetterPrompt does not state for this prompt: a key is checked against run_model when given."
	}
	for _, o := range opts {
		enum := make([]any, len(o.Values))
		for i, v := range o.Values {
			enum[i] = v
		}
		p := &jsonschema.Schema{Type: "string", Enum: enum}
		if !exact {
			p.Description = "Taken by " + strings.Join(o.Models, ", ") + "."
		}
		s.Properties.Set(o.Key, p)
	}
	return s
}

// checkRunOptions checks run options against the models a prompt may run
// with when no run_model is given. With the default model known, each key
// and value must be its; otherwise a key no model of the prompt's modality
// takes, or a value none accepts, is refused (the API would refuse it
// whatever the model). The message names each field.
func checkRunOptions(opts map[string]string, models []bpapi.Model, exact bool, modality string) []string {
	if len(models) == 0 || len(opts) == 0 {
		return nil
	}
	union := unionOptions(models)
	var keys []string
	for _, u := range union {
		keys = append(keys, u.Key)
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		i := slices.IndexFunc(union, func(u optionUnion) bool { return u.Key == k })
		switch {
		case i >= 0 && slices.Contains(union[i].Values, opts[k]):
		case i >= 0:
			problems = append(problems, fmt.Sprintf("run_options.%s: must be one of %s; got %q", k, quoteAll(union[i].Values), opts[k]))
		case exact && len(keys) == 0:
			problems = append(problems, fmt.Sprintf("run_options.%s: the prompt's model %s takes no run options; leave run_options out", k, models[0].Model))
		case exact:
			problems = append(problems, fmt.Sprintf("run_options.%s: the prompt's model %s has no such option; its options: %s", k, models[0].Model, quoteAll(keys)))
		case len(keys) == 0:
			problems = append(problems, fmt.Sprintf("run_options.%s: no %s model takes run options; leave run_options out", k, modality))
		default:
			problems = append(problems, fmt.Sprintf("run_options.%s: no %s model has this option; %s models take: %s", k, modality, modality, quoteAll(keys)))
		}
	}
	return problems
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

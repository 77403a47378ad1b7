package betterprompt

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
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
	// VersionID is the version the row described (the latest when it was
	// read): the price, model and options are that version's.
	VersionID string
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
	if g.VersionID != "" {
		f.VersionID = g.VersionID
	}
	return f
}

// fill returns f with the fields it lacks taken from g: what g says is
// inferred, and never replaces what a row stated.
func (f promptFacts) fill(g promptFacts) promptFacts {
	if f.Modality == "" {
		f.Modality = g.Modality
	}
	if f.EstimatedCredits == nil {
		f.EstimatedCredits = g.EstimatedCredits
	}
	if f.Model == "" {
		f.Model = g.Model
	}
	if f.DefaultRunOptions == nil {
		f.DefaultRunOptions = g.DefaultRunOptions
	}
	if f.VersionID == "" {
		f.VersionID = g.VersionID
	}
	return f
}

// forVersion returns the facts that hold for versionID: all of them for
// the version the row described (or when it did not say), else only the
// type, which a new version does not change.
func (f promptFacts) forVersion(versionID string) promptFacts {
	if f.VersionID == "" || strings.EqualFold(f.VersionID, versionID) {
		return f
	}
	return promptFacts{Modality: f.Modality}
}

func (f promptFacts) empty() bool {
	return f.Modality == "" && f.EstimatedCredits == nil && f.Model == "" && f.DefaultRunOptions == nil && f.VersionID == ""
}

// complete reports whether a lookup could add nothing a search row gives.
func (f promptFacts) complete() bool { return f.Modality != "" && f.EstimatedCredits != nil }

func factsOfRow(r bpapi.PromptSummary) promptFacts {
	return promptFacts{Modality: string(r.Modality), EstimatedCredits: r.EstimatedCredits, Model: r.Model.Name,
		DefaultRunOptions: r.DefaultRunOptions, VersionID: r.PromptVersionID}
}

func factsOfSkill(s bpapi.Skill) promptFacts {
	return promptFacts{Modality: string(s.Modality), EstimatedCredits: s.EstimatedCredits, Model: s.Model.Name,
		DefaultRunOptions: s.DefaultRunOptions, VersionID: s.LatestPromptVersionID}
}

// learnSkill keeps what a skills row says; modality is the type it was
// searched with, an inference that fills in only a type nothing stated.
func (c *factCache) learnSkill(s bpapi.Skill, modality string) promptFacts {
	c.learn(s.SkillID, factsOfSkill(s))
	if modality != "" {
		c.infer(s.SkillID, promptFacts{Modality: modality})
	}
	return c.get(s.SkillID)
}

// factCache keeps promptFacts by prompt id. What it holds is public
// marketplace data, the same for every caller, so it is shared by all.
// Entries are kept for factsTTL: prices change.
type factCache struct {
	mu       sync.Mutex
	entries  map[string]factEntry
	inFlight map[string]chan struct{} // prompt id → closed when its lookup ends
}

type factEntry struct {
	f      promptFacts
	at     time.Time // when it was last learnt
	looked time.Time // when a lookup last ran for it
}

const (
	maxFacts = 4096
	factsTTL = 30 * time.Minute
	// lookupEvery spaces out the lookups of a prompt that they cannot
	// complete (a video prompt's rows carry no price).
	lookupEvery = 10 * time.Minute
)

// learn keeps what a row stated, over what was known.
func (c *factCache) learn(promptID string, f promptFacts) {
	c.update(promptID, func(e *factEntry) { e.f = e.f.merge(f) })
}

// infer fills in what nothing stated yet.
func (c *factCache) infer(promptID string, f promptFacts) {
	c.update(promptID, func(e *factEntry) { e.f = e.f.fill(f) })
}

func (c *factCache) update(promptID string, change func(*factEntry)) {
	if promptID == "" {
		return
	}
	id := strings.ToLower(promptID)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxFacts {
		c.entries = make(map[string]factEntry) // bounded; a search relearns what it needs
	}
	e := c.entries[id]
	if now.Sub(e.at) > factsTTL {
		e.f = promptFacts{}
	}
	change(&e)
	e.at = now
	c.entries[id] = e
}

func (c *factCache) get(promptID string) promptFacts {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[strings.ToLower(promptID)]
	if time.Since(e.at) > factsTTL {
		return promptFacts{}
	}
	return e.f
}

// startLookup reports whether a lookup of promptID is due and records that
// one runs now; done must then be called when it ends. When another
// lookup of it is in flight, it waits for that one (or ctx) and reports
// that none is due: concurrent calls share one lookup.
func (c *factCache) startLookup(ctx context.Context, promptID string) (due bool, done func()) {
	id := strings.ToLower(promptID)
	now := time.Now()
	c.mu.Lock()
	if wait, ok := c.inFlight[id]; ok {
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
		}
		return false, nil
	}
	e, ok := c.entries[id]
	if ok && now.Sub(e.looked) < lookupEvery {
		c.mu.Unlock()
		return false, nil
	}
	if c.entries == nil || len(c.entries) >= maxFacts {
		c.entries = make(map[string]factEntry)
	}
	e.looked = now
	c.entries[id] = e
	if c.inFlight == nil {
		c.inFlight = make(map[string]chan struct{})
	}
	ch := make(chan struct{})
	c.inFlight[id] = ch
	c.mu.Unlock()
	return true, func() {
		c.mu.Lock()
		delete(c.inFlight, id)
		c.mu.Unlock()
		close(ch)
	}
}

// unmarkLookup forgets that a lookup of promptID ran (it learnt nothing).
func (c *factCache) unmarkLookup(promptID string) {
	id := strings.ToLower(promptID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		e.looked = time.Time{}
		c.entries[id] = e
	}
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
	due, done := d.facts.startLookup(ctx, pv.PromptID)
	if !due {
		return d.facts.get(pv.PromptID)
	}
	defer done()
	// The lookup is shared by every call that waits for it: it does not
	// end with the call that started it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	answered := false
	defer func() {
		if !answered {
			d.facts.unmarkLookup(pv.PromptID) // nothing was learnt: the next call tries again
		}
	}()
	q := strings.TrimSpace(pv.Title)
	if utf8.RuneCountInString(q) > maxQueryLength {
		q = string([]rune(q)[:maxQueryLength])
	}
	if q == "" {
		return d.facts.get(pv.PromptID)
	}
	if rows, err := c.SearchPrompts(ctx, q); err == nil {
		answered = true
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
		answered = true
		for _, r := range rows {
			d.facts.learnSkill(r, "video")
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

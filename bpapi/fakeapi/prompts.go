package fakeapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxSearchRows caps search answers (the real page size is not documented).
const maxSearchRows = 20

// searchRow is one row of GET /v1/prompts/publish (reference §7.1, the 13
// documented fields).
type searchRow struct {
	PromptID         string          `json:"promptId"`
	PromptVersionID  string          `json:"promptVersionId"`
	Title            string          `json:"title"`
	Description      string          `json:"description"`
	Slug             string          `json:"slug"`
	Model            int             `json:"model"`
	Modality         int             `json:"modality"`
	EstimatedCredits int             `json:"estimatedCredits"`
	Uses             int             `json:"uses"`
	UpVotes          int             `json:"upVotes"`
	PublishedAt      string          `json:"publishedAt"`
	Samples          json.RawMessage `json:"samples"`
	Configs          json.RawMessage `json:"configs"`
}

// promptVersionData is the data of GET /v1/prompts/{id} and
// GET /v1/prompt-versions/{id} (reference §7.2, §7.4). A legacy version
// carries inputsJTD in place of config.
type promptVersionData struct {
	PromptVersionID string          `json:"promptVersionId"`
	PromptID        string          `json:"promptId"`
	Title           string          `json:"title"`
	PublishedAt     string          `json:"publishedAt"`
	Config          json.RawMessage `json:"config,omitempty"`
	InputsJTD       json.RawMessage `json:"inputsJTD,omitempty"`
}

func modalityIndex(m string) int {
	switch m {
	case "image":
		return 1
	case "video":
		return 2
	}
	return 0
}

// configOf is what search rows (configs) and skills (inputMetadata) show
// for a version: its config, {"inputsJTD": ...} for a legacy version, or {}.
func configOf(v Version) json.RawMessage {
	switch {
	case hasJSON(v.Config):
		return v.Config
	case hasJSON(v.InputsJTD):
		return json.RawMessage(`{"inputsJTD":` + string(v.InputsJTD) + `}`)
	}
	return json.RawMessage(`{}`)
}

func versionData(p *Prompt, v Version) promptVersionData {
	d := promptVersionData{PromptVersionID: v.PromptVersionID, PromptID: p.PromptID, Title: p.Title, PublishedAt: v.PublishedAt}
	switch {
	case hasJSON(v.Config):
		d.Config = v.Config
	case hasJSON(v.InputsJTD):
		d.InputsJTD = v.InputsJTD
	default:
		d.Config = json.RawMessage(`{}`)
	}
	return d
}

func samplesOf(p *Prompt) json.RawMessage {
	if hasJSON(p.Samples) {
		return p.Samples
	}
	return json.RawMessage(`{}`)
}

// queryText validates a required search text: trimmed, 1..200 characters.
func queryText(w http.ResponseWriter, r *http.Request) (string, bool) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	switch {
	case q == "":
		writeError(w, http.StatusUnprocessableEntity, "q is required")
		return "", false
	case utf8.RuneCountInString(q) > 200:
		writeError(w, http.StatusUnprocessableEntity, "q must be at most 200 characters")
		return "", false
	}
	return q, true
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, c *call) {
	q, ok := queryText(w, r)
	if !ok {
		return
	}
	rows := []searchRow{}
	for _, p := range s.rank(q, func(p *Prompt) bool { return p.Modality != "video" }) {
		latest := p.Versions[0]
		rows = append(rows, searchRow{
			PromptID:         p.PromptID,
			PromptVersionID:  latest.PromptVersionID,
			Title:            p.Title,
			Description:      p.Description,
			Slug:             p.Slug,
			Model:            p.ModelIndex,
			Modality:         modalityIndex(p.Modality),
			EstimatedCredits: p.EstimatedCredits,
			Uses:             p.Uses,
			UpVotes:          p.UpVotes,
			PublishedAt:      latest.PublishedAt,
			Samples:          samplesOf(p),
			Configs:          configOf(latest),
		})
	}
	writeData(w, map[string]any{"rows": rows})
}

var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "for": true, "of": true, "to": true, "and": true, "or": true,
	"in": true, "on": true, "with": true, "my": true, "me": true, "i": true, "is": true, "it": true,
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// stem reduces a word to its singular by the common English plural rules,
// so that "emails" finds "Email" and "stories" finds "story". It is
// deliberately simple: a search that finds a little too much is better
// than one that finds nothing for the first words a person types.
func stem(w string) string {
	switch {
	case len(w) > 4 && strings.HasSuffix(w, "ies"):
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"):
		return w[:len(w)-2]
	case len(w) > 4 && (strings.HasSuffix(w, "xes") || strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes") || strings.HasSuffix(w, "zes")):
		return w[:len(w)-2]
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		return w[:len(w)-1]
	}
	return w
}

// stems returns the set of stems of the words in s.
func stems(s string) map[string]bool {
	set := map[string]bool{}
	for _, w := range words(s) {
		set[stem(w)] = true
	}
	return set
}

// matches reports whether a query term is in a field: as a substring (a
// word's beginning finds the word), or as the same stem (a plural finds
// its singular and the other way round).
func matches(field string, fieldStems map[string]bool, term string) bool {
	return strings.Contains(field, term) || fieldStems[stem(term)]
}

// rank returns the prompts accepted by keep that match q, best first: a
// simple text ranking (phrase and word matches over title, slug and
// description, words compared by their stems), then uses, then title.
func (s *Server) rank(q string, keep func(*Prompt) bool) []*Prompt {
	phrase := strings.ToLower(q)
	var terms []string
	for _, t := range words(q) {
		if !stopWords[t] {
			terms = append(terms, t)
		}
	}
	type scored struct {
		p     *Prompt
		score int
	}
	var hits []scored
	for _, p := range s.prompts {
		if !keep(p) {
			continue
		}
		title, desc := strings.ToLower(p.Title), strings.ToLower(p.Description)
		slug := strings.ReplaceAll(strings.ToLower(p.Slug), "-", " ")
		titleStems, slugStems, descStems := stems(title), stems(slug), stems(desc)
		score := 0
		if strings.Contains(title, phrase) {
			score += 20
		}
		if strings.Contains(slug, phrase) {
			score += 10
		}
		if strings.Contains(desc, phrase) {
			score += 8
		}
		for _, t := range terms {
			if matches(title, titleStems, t) {
				score += 5
			}
			if matches(slug, slugStems, t) {
				score += 3
			}
			if matches(desc, descStems, t) {
				score += 2
			}
		}
		if score > 0 {
			hits = append(hits, scored{p, score})
		}
	}
	slices.SortStableFunc(hits, func(a, b scored) int {
		switch {
		case a.score != b.score:
			return b.score - a.score
		case a.p.Uses != b.p.Uses:
			return b.p.Uses - a.p.Uses
		}
		return strings.Compare(a.p.Title, b.p.Title)
	})
	out := make([]*Prompt, 0, min(len(hits), maxSearchRows))
	for i := 0; i < len(hits) && i < maxSearchRows; i++ {
		out = append(out, hits[i].p)
	}
	return out
}

// lookupPrompt finds the prompt with id, answering 422 for a malformed id
// and 404 for an unknown one.
func (s *Server) lookupPrompt(w http.ResponseWriter, id string) (*Prompt, bool) {
	if !isUUID(id) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid promptId")
		return nil, false
	}
	p := s.byPrompt[strings.ToLower(id)]
	if p == nil {
		writeError(w, http.StatusNotFound, "Prompt not found")
		return nil, false
	}
	return p, true
}

// lookupVersion finds the version with id, answering 422 for a malformed
// id and 404 for an unknown one.
func (s *Server) lookupVersion(w http.ResponseWriter, id string) (versionRef, bool) {
	if !isUUID(id) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid promptVersionId")
		return versionRef{}, false
	}
	ref, ok := s.byVersion[strings.ToLower(id)]
	if !ok {
		writeError(w, http.StatusNotFound, "Prompt version not found")
	}
	return ref, ok
}

func (s *Server) handlePrompt(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("promptId")
	versionID := r.URL.Query().Get("versionId")
	if isUUID(id) && versionID != "" && !isUUID(versionID) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid versionId")
		return
	}
	p, ok := s.lookupPrompt(w, id)
	if !ok {
		return
	}
	v := p.Versions[0]
	if versionID != "" {
		ref, ok := s.byVersion[strings.ToLower(versionID)]
		if !ok || ref.prompt != p {
			writeError(w, http.StatusNotFound, "Prompt version not found")
			return
		}
		v = p.Versions[ref.index]
	}
	writeData(w, versionData(p, v))
}

func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request, c *call) {
	p, ok := s.lookupPrompt(w, r.PathValue("promptId"))
	if !ok {
		return
	}
	type item struct {
		PromptVersionID string `json:"promptVersionId"`
		PublishedAt     string `json:"publishedAt"`
		IsLatest        bool   `json:"isLatest,omitempty"`
	}
	versions := []item{}
	for i, v := range p.Versions {
		if i == 10 {
			break
		}
		versions = append(versions, item{PromptVersionID: v.PromptVersionID, PublishedAt: v.PublishedAt, IsLatest: i == 0})
	}
	writeData(w, map[string]any{"promptId": p.PromptID, "title": p.Title, "versions": versions})
}

func (s *Server) handlePromptVersion(w http.ResponseWriter, r *http.Request, c *call) {
	ref, ok := s.lookupVersion(w, r.PathValue("promptVersionId"))
	if !ok {
		return
	}
	writeData(w, versionData(ref.prompt, ref.prompt.Versions[ref.index]))
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, c *call) {
	s.mu.Lock()
	k := c.acct.Key
	s.mu.Unlock()
	if k.Username == "" {
		k.Username = "fake_user"
	}
	if k.DisplayName == "" {
		k.DisplayName = "Fake User"
	}
	writeData(w, map[string]any{"username": k.Username, "displayName": k.DisplayName, "userFlags": k.UserFlags})
}

func (s *Server) handleCredits(w http.ResponseWriter, r *http.Request, c *call) {
	s.mu.Lock()
	s.settleLocked(time.Now())
	n := c.acct.Credits
	s.mu.Unlock()
	writeData(w, map[string]any{"credits": n})
}

func (s *Server) handleResources(w http.ResponseWriter, r *http.Request, c *call) {
	writeBody(w, http.StatusOK, "application/json", []byte(resourcesJSON))
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request, c *call) {
	writeData(w, map[string]any{"ok": true})
}

// skillRow is the newer CLI shape of a skill (reference §7.11).
type skillRow struct {
	Author                any             `json:"author"`
	Description           string          `json:"description"`
	Sample                json.RawMessage `json:"sample"`
	SkillID               string          `json:"skillId"`
	LatestPromptVersionID string          `json:"latestPromptVersionId"`
	Metadata              struct {
		SkillmdURL string `json:"skillmdUrl"`
	} `json:"metadata"`
	Title         string          `json:"title"`
	Name          string          `json:"name"`
	InputMetadata json.RawMessage `json:"inputMetadata,omitempty"`
	// Pricing answers the CLI's pricing=true flag. Its shape is not
	// documented (inferred): clients must also cope with its absence.
	Pricing *skillPricing `json:"pricing,omitempty"`
}

type skillPricing struct {
	EstimatedCredits int `json:"estimatedCredits"`
}

func skillOf(p *Prompt) skillRow {
	row := skillRow{
		Description:           p.Description,
		SkillID:               p.PromptID,
		LatestPromptVersionID: p.Versions[0].PromptVersionID,
		Title:                 p.Title,
		Name:                  p.Slug,
		Sample:                json.RawMessage(`{"inputs":null,"outputs":null}`),
	}
	var sample struct {
		Inputs  json.RawMessage `json:"inputs"`
		Outputs json.RawMessage `json:"outputs"`
	}
	if hasJSON(p.Samples) && json.Unmarshal(p.Samples, &sample) == nil && (hasJSON(sample.Inputs) || hasJSON(sample.Outputs)) {
		row.Sample = encodeJSON(map[string]json.RawMessage{"inputs": orNull(sample.Inputs), "outputs": orNull(sample.Outputs)})
	}
	row.Metadata.SkillmdURL = "https://raw.githubusercontent.com/BetterPromptme/skills/fake/skills/" + p.Slug + "/SKILL.md"
	return row
}

func orNull(raw json.RawMessage) json.RawMessage {
	if hasJSON(raw) {
		return raw
	}
	return json.RawMessage(`null`)
}

func (s *Server) handleSkills(w http.ResponseWriter, r *http.Request, c *call) {
	q, ok := queryText(w, r)
	if !ok {
		return
	}
	typ := r.URL.Query().Get("type")
	switch typ {
	case "", "text", "image", "video":
	default:
		writeError(w, http.StatusUnprocessableEntity, "type must be text, image or video")
		return
	}
	author := r.URL.Query().Get("author")
	rows := []skillRow{}
	for _, p := range s.rank(q, func(p *Prompt) bool { return typ == "" || p.Modality == typ }) {
		if author != "" {
			continue // fixture prompts have no author
		}
		rows = append(rows, skillOf(p))
	}
	writeData(w, map[string]any{"rows": rows})
}

func (s *Server) handleSkill(w http.ResponseWriter, r *http.Request, c *call) {
	p := s.bySlug[r.PathValue("name")]
	if p == nil {
		writeError(w, http.StatusNotFound, "Skill not found")
		return
	}
	row := skillOf(p)
	row.InputMetadata = configOf(p.Versions[0])
	if r.URL.Query().Get("pricing") == "true" {
		row.Pricing = &skillPricing{EstimatedCredits: p.EstimatedCredits}
	}
	writeData(w, row)
}

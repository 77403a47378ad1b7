package bpapi

import (
	"context"
	"errors"
	"testing"
)

func TestSkillBySlug(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, answer(200, success(`{"skillId":"`+runID+`","latestPromptVersionId":"`+runID+`","name":"cold-email","title":"Cold"}`)))
	s, err := c.SkillBySlug(context.Background(), "cold-email")
	if err != nil || s.SkillID != runID || s.Name != "cold-email" {
		t.Fatalf("SkillBySlug = %+v, %v", s, err)
	}
	if got := srv.requests()[0].Path; got != "/v1/skills/cold-email" {
		t.Errorf("path %s", got)
	}
	for _, bad := range []string{"", "Cold-Email", "../x", "a b", "cold--email", "-x"} {
		if _, err := c.SkillBySlug(context.Background(), bad); !errors.Is(err, ErrInvalidID) {
			t.Errorf("SkillBySlug(%q) = %v; want ErrInvalidID and nothing sent", bad, err)
		}
	}
	if n := srv.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	_, c2 := newServer(t, answer(200, success(`{"name":"x"}`)))
	if _, err := c2.SkillBySlug(context.Background(), "x"); err == nil {
		t.Error("an answer without a prompt id was accepted")
	}
}

func TestSearchSkills(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, answer(200, success(`{"rows":[{"skillId":"`+runID+`","latestPromptVersionId":"`+runID+`","name":"clip","title":"Clip"},{"name":"no-id"}]}`)))
	rows, err := c.SearchSkills(context.Background(), "  clip ", "video")
	if err != nil || len(rows) != 1 || rows[0].Name != "clip" {
		t.Fatalf("SearchSkills = %+v, %v; want the one row with a prompt id", rows, err)
	}
	if r := srv.requests()[0]; r.Path != "/v1/skills" || r.RawQuery != "q=clip&type=video" {
		t.Errorf("request %s?%s", r.Path, r.RawQuery)
	}
	if _, err := c.SearchSkills(context.Background(), " ", ""); !errors.Is(err, ErrEmptyQuery) {
		t.Errorf("empty query: %v", err)
	}
}

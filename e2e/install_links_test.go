package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// installConfig is what a one-click install link gives the host: a stdio
// server's command line.
type installConfig struct {
	Type    string            `json:"type"` // VS Code's; Cursor's links have none
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
}

// installLinks decodes the README's one-click install links, the way VS
// Code (URL-encoded JSON) and Cursor (base64 JSON) read them.
func installLinks(t *testing.T) map[string]struct {
	name string
	cfg  installConfig
} {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]struct {
		name string
		cfg  installConfig
	}{}
	for host, pattern := range map[string]string{
		"VS Code": `https://vscode\.dev/redirect/mcp/install\?[^)\s]+`,
		"Cursor":  `https://cursor\.com/en/install-mcp\?[^)\s]+`,
	} {
		found := regexp.MustCompile(pattern).FindAllString(string(readme), -1)
		if len(found) != 1 {
			t.Fatalf("README: %d %s install links, want 1", len(found), host)
		}
		u, err := url.Parse(found[0])
		if err != nil {
			t.Fatalf("%s link: %v", host, err)
		}
		q := u.Query()
		raw := []byte(q.Get("config"))
		if host == "Cursor" {
			if raw, err = base64.StdEncoding.DecodeString(q.Get("config")); err != nil {
				t.Fatalf("Cursor link: config is not base64: %v", err)
			}
		}
		var cfg installConfig
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("%s link: config %q: %v", host, raw, err)
		}
		links[host] = struct {
			name string
			cfg  installConfig
		}{q.Get("name"), cfg}
	}
	return links
}

// The README's install links carry the sandbox configuration, and what
// they configure starts and answers: the host runs `bpmcp` from PATH with
// the link's arguments and environment.
func TestInstallLinksWork(t *testing.T) {
	for host, link := range installLinks(t) {
		t.Run(host, func(t *testing.T) {
			cfg := link.cfg
			if link.name != "betterprompt-sandbox" {
				t.Errorf("name = %q, want betterprompt-sandbox", link.name)
			}
			if host == "VS Code" && cfg.Type != "stdio" {
				t.Errorf("type = %q, want stdio", cfg.Type)
			}
			if cfg.Command != "bpmcp" || !slices.Contains(cfg.Args, "--sandbox") {
				t.Fatalf("config %+v: want bpmcp with --sandbox", cfg)
			}
			// As installed: bpmcp found on PATH (the built binary's
			// directory), the link's own arguments and environment.
			path := filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH")
			env := append(cleanEnv(), "PATH="+path)
			for k, v := range cfg.Env {
				env = append(env, k+"="+v)
			}
			exe, err := lookPath(cfg.Command, path)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, cfg.Args...)
			cmd.Env, cmd.Stderr = env, io.Discard
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: host, Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
			if err != nil {
				t.Fatalf("the configured server does not start: %v", err)
			}
			defer func() { _ = cs.Close() }()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "search_prompts", Arguments: map[string]any{"query": "email"}})
			if err != nil || res.IsError {
				t.Fatalf("search_prompts: %v %+v", err, res)
			}
			if text := textOf(res); !strings.Contains(text, "Cold Email Opener") {
				t.Errorf("search_prompts answered %q, want the sandbox's Cold Email Opener", text)
			}
		})
	}
}

// lookPath finds command in path, as a host would.
func lookPath(command, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, command)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(command) // reports "not found" the usual way
}

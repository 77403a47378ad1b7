package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

// registrySchema is the MCP Registry's server.json schema, copied into the
// repository (testdata/registry/SOURCE.md says from where).
const (
	registrySchemaURL  = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
	registrySchemaFile = "testdata/registry/server.schema.2025-12-11.json"
)

// serverEntry is what the tests below read of server.json.
type serverEntry struct {
	Schema     string `json:"$schema"`
	Name       string `json:"name"`
	Version    string `json:"version"`
	Repository struct {
		URL string `json:"url"`
	} `json:"repository"`
	Packages []struct {
		RegistryType string `json:"registryType"`
		Identifier   string `json:"identifier"`
		Version      string `json:"version"`
		FileSha256   string `json:"fileSha256"`
		Env          []struct {
			Name     string `json:"name"`
			IsSecret bool   `json:"isSecret"`
		} `json:"environmentVariables"`
	} `json:"packages"`
	Remotes []struct {
		Headers []struct {
			Name     string `json:"name"`
			IsSecret bool   `json:"isSecret"`
		} `json:"headers"`
	} `json:"remotes"`
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serverJSONFiles are the entries to check: the repository's, and the one a
// release stamps with its bundles' hashes when BPMCP_SERVER_JSON names it
// (e2e/run-release.sh does).
func serverJSONFiles() []string {
	files := []string{"server.json"}
	if f := os.Getenv("BPMCP_SERVER_JSON"); f != "" {
		files = append(files, f)
	}
	return files
}

func TestServerJSONFollowsTheRegistrySchema(t *testing.T) {
	doc, err := jsv.UnmarshalJSON(bytes.NewReader(readFile(t, registrySchemaFile)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsv.NewCompiler()
	if err := c.AddResource(registrySchemaURL, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(registrySchemaURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range serverJSONFiles() {
		t.Run(file, func(t *testing.T) {
			b := readFile(t, file)
			inst, err := jsv.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Fatalf("%s does not follow the registry's schema:\n%v", file, err)
			}
			var e serverEntry
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.Schema != registrySchemaURL {
				t.Errorf("$schema = %q, want %q (the copy the test validates against)", e.Schema, registrySchemaURL)
			}
		})
	}
}

// The schema alone would take a mistake that the registry or a client
// would not: the checks below are the rules of the official registry and
// of this server.
func TestServerJSONDescribesThisServer(t *testing.T) {
	settings := envSettings()
	owner, name := publicHome(t)
	for _, file := range serverJSONFiles() {
		t.Run(file, func(t *testing.T) {
			var e serverEntry
			if err := json.Unmarshal(readFile(t, file), &e); err != nil {
				t.Fatal(err)
			}
			if want := "io.github." + owner + "/" + name; e.Name != want {
				t.Errorf("name = %q, want %q (from go.mod's module path)", e.Name, want)
			}
			if want := "https://github.com/" + owner + "/" + name; e.Repository.URL != want {
				t.Errorf("repository.url = %q, want %q", e.Repository.URL, want)
			}
			stamped := file != "server.json"
			kinds := map[string]int{}
			for _, p := range e.Packages {
				kinds[p.RegistryType]++
				switch p.RegistryType {
				case "oci":
					if want := "ghcr.io/" + owner + "/" + name + ":" + e.Version; p.Identifier != want {
						t.Errorf("OCI identifier = %q, want %q", p.Identifier, want)
					}
				case "mcpb":
					prefix := "https://github.com/" + owner + "/" + name + "/releases/download/v" + e.Version + "/bpmcp_" + e.Version + "_"
					if !strings.HasPrefix(p.Identifier, prefix) || !strings.HasSuffix(p.Identifier, ".mcpb") {
						t.Errorf("MCPB identifier = %q, want %s<os>_<arch>.mcpb (the name mcpb/pack.sh gives)", p.Identifier, prefix)
					}
					if p.Version != e.Version {
						t.Errorf("%s: version %q, want the entry's %q", p.Identifier, p.Version, e.Version)
					}
					// The registry requires a bundle's hash; only a release
					// knows it (e2e/run-release.sh stamps a copy).
					if stamped && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.FileSha256) {
						t.Errorf("%s: fileSha256 %q is not a SHA-256", p.Identifier, p.FileSha256)
					}
				default:
					t.Errorf("package type %q: this server ships as oci and mcpb", p.RegistryType)
				}
				for _, v := range p.Env {
					if !settings[v.Name] {
						t.Errorf("%s: environment variable %s is not one of the server's settings", p.Identifier, v.Name)
					}
					if strings.HasSuffix(v.Name, "_API_KEY") && !v.IsSecret {
						t.Errorf("%s: %s must be isSecret", p.Identifier, v.Name)
					}
				}
			}
			if kinds["oci"] != 1 || kinds["mcpb"] == 0 {
				t.Errorf("packages by type %v: want one OCI image and the MCPB bundles", kinds)
			}
			for _, r := range e.Remotes {
				for _, h := range r.Headers {
					if !h.IsSecret {
						t.Errorf("remote header %s carries a credential: it must be isSecret", h.Name)
					}
				}
			}
		})
	}
}

// The MCPB manifest passes the user's settings to the server in its
// environment: every name must be a setting.
func TestMCPBManifestSettingsExist(t *testing.T) {
	var m struct {
		Server struct {
			MCPConfig struct {
				Env map[string]string `json:"env"`
			} `json:"mcp_config"`
		} `json:"server"`
		UserConfig map[string]struct {
			Sensitive bool `json:"sensitive"`
		} `json:"user_config"`
	}
	if err := json.Unmarshal(readFile(t, "mcpb/manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	settings := envSettings()
	ref := regexp.MustCompile(`^\$\{user_config\.([a-z_]+)\}$`)
	for name, value := range m.Server.MCPConfig.Env {
		if !settings[name] {
			t.Errorf("mcp_config.env sets %s, which is not one of the server's settings", name)
		}
		sub := ref.FindStringSubmatch(value)
		if sub == nil {
			continue
		}
		uc, ok := m.UserConfig[sub[1]]
		if !ok {
			t.Errorf("%s refers to user_config.%s, which the manifest does not declare", name, sub[1])
		}
		if strings.HasSuffix(name, "_API_KEY") && !uc.Sensitive {
			t.Errorf("user_config.%s holds %s: it must be sensitive", sub[1], name)
		}
	}
}

// envSettings are the environment variables the server reads.
func envSettings() map[string]bool {
	names := map[string]bool{}
	typ := reflect.TypeFor[config]()
	for i := range typ.NumField() {
		if env := typ.Field(i).Tag.Get("env"); env != "" {
			names[env] = true
		}
	}
	return names
}

// publicHome is the GitHub owner and repository that go.mod's module path
// names: the one place the project's public home is written down. Every
// file that repeats it is checked against it (TestPublicHomeIsOnePlace).
func publicHome(t *testing.T) (owner, name string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^module github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$`).FindSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod: the module path is not github.com/<owner>/<name>")
	}
	return string(m[1]), string(m[2])
}

// When the project moves, go.mod's module path changes and this test names
// every file that still says the old home (README: "When the project gets
// its public home").
func TestPublicHomeIsOnePlace(t *testing.T) {
	owner, name := publicHome(t)
	repo := "github.com/" + owner + "/" + name
	want := map[string][]string{
		"Dockerfile":                     {`io.modelcontextprotocol.server.name="io.github.` + owner + "/" + name + `"`},
		"deploy/container/Containerfile": {`io.modelcontextprotocol.server.name="io.github.` + owner + "/" + name + `"`},
		".goreleaser.yaml":               {"homepage: https://" + repo, "owner: " + owner},
		"README.md":                      {"go install " + repo + "@latest", "ghcr.io/" + owner + "/" + name, "brew install --cask " + owner + "/tap/bpmcp"},
	}
	for file, needles := range want {
		text := string(readFile(t, file))
		for _, n := range needles {
			if !strings.Contains(text, n) {
				t.Errorf("%s does not say %q", file, n)
			}
		}
	}
}

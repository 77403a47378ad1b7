// Package kubernetes holds the Kubernetes manifests; its test decodes them
// strictly with the Kubernetes API types, so that a misspelt field fails.
package kubernetes

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

func TestManifestsDecodeStrictly(t *testing.T) {
	raw, err := os.ReadFile("bpmcp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var deploy *appsv1.Deployment
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch meta.Kind {
		case "Deployment":
			deploy = &appsv1.Deployment{}
			obj = deploy
		case "Service":
			obj = &corev1.Service{}
		case "Secret":
			obj = &corev1.Secret{}
		case "HorizontalPodAutoscaler":
			obj = &autoscalingv2.HorizontalPodAutoscaler{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		default:
			t.Fatalf("unexpected kind %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s: %v", meta.Kind, err)
		}
		kinds[meta.Kind]++
	}
	for _, k := range []string{"Deployment", "Service", "Secret", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} {
		if kinds[k] != 1 {
			t.Errorf("%d %s", kinds[k], k)
		}
	}
	if deploy == nil {
		return
	}
	spec := deploy.Spec.Template.Spec
	c := spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("the probes are not /readyz and /healthz")
	}
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds < 210 {
		t.Error("the termination grace does not cover the drain (the 30 s shutdown grace and the 180 s start timeout)")
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil {
		t.Error("the keys do not come from a Secret")
	}
}

// The Dockerfile builds a static binary on an empty, non-root base,
// labelled with the MCP registry's server name; the Containerfile CI builds
// offline from a prebuilt binary makes the same image (its final stage says
// the same, line for line, but where the files come from).
func TestDockerfile(t *testing.T) {
	final := map[string][]string{}
	for _, file := range []string{"../../Dockerfile", "../container/Containerfile"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		for _, want := range []string{"FROM scratch", "USER 65532:65532", "io.modelcontextprotocol.server.name=", "/etc/ssl/certs/ca-certificates.crt"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %q", file, want)
			}
		}
		stage := s[strings.LastIndex(s, "FROM scratch"):]
		for _, l := range strings.Split(string(stripComments([]byte(stage))), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "COPY ") {
				final[file] = append(final[file], l)
			}
		}
	}
	if a, b := final["../../Dockerfile"], final["../container/Containerfile"]; !slices.Equal(a, b) {
		t.Errorf("the two images differ:\nDockerfile:    %q\nContainerfile: %q", a, b)
	}
	raw, _ := os.ReadFile("../../Dockerfile")
	if !strings.Contains(string(raw), "CGO_ENABLED=0") {
		t.Error("the Dockerfile's binary is not static (CGO_ENABLED=0)")
	}
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

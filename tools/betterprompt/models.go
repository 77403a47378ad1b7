package betterprompt

import (
	"context"
	"fmt"
	"strings"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/tools"
)

// ListModelsInput is the argument of list_models.
type ListModelsInput struct {
	Modality string `json:"modality,omitempty" jsonschema:"enum=text,enum=image,enum=video"`
}

// Check validates the arguments before anything is sent.
func (in *ListModelsInput) Check() error {
	switch in.Modality {
	case "", "text", "image", "video":
		return nil
	}
	return tools.Invalidf("modality must be \"text\", \"image\" or \"video\", or left out for all, got %s", tools.Excerpt(in.Modality, 20))
}

// ListModelsOutput is the result of list_models.
type ListModelsOutput struct {
	Models []ModelView `json:"models"`
}

// ModelView is one model a run may use, with its run options: each key and
// the values it accepts.
type ModelView struct {
	Model      string              `json:"model"`
	Modality   string              `json:"modality"`
	RunOptions map[string][]string `json:"run_options"`
}

// JSONSchema declares a model as a plain object, to keep tools/list small;
// its fields are in the README.
func (ModelView) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

func listModels(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:        "list_models",
		Title:       "List models",
		Description: "Models for run_model, with their run_options values.",
		Hints:       tools.ReadOnlyHints,
	}, func(ctx context.Context, in ListModelsInput) (tools.Result[ListModelsOutput], error) {
		c, _, err := d.client(ctx)
		if err != nil {
			return tools.Result[ListModelsOutput]{}, err
		}
		res, err := d.resourcesFor(ctx, c)
		if err != nil {
			return tools.Result[ListModelsOutput]{}, err
		}
		out := ListModelsOutput{Models: []ModelView{}}
		var b strings.Builder
		for _, m := range res.Models {
			if in.Modality != "" && m.Modality != in.Modality {
				continue
			}
			v := ModelView{Model: m.Model, Modality: m.Modality, RunOptions: map[string][]string{}}
			var opts []string
			for _, o := range unionOptions([]bpapi.Model{m}) {
				v.RunOptions[o.Key] = o.Values
				opts = append(opts, fmt.Sprintf("%s: %s", o.Key, quoteAll(o.Values)))
			}
			out.Models = append(out.Models, v)
			line := fmt.Sprintf("- %s (%s)", m.Model, m.Modality)
			if len(opts) > 0 {
				line += ": " + strings.Join(opts, "; ")
			} else {
				line += ": no run options"
			}
			b.WriteString(line + "\n")
		}
		head := fmt.Sprintf("%s a run may use (run_model), with their run_options:\n", plural(len(out.Models), "model", "models"))
		return tools.Text(out, head+b.String()+"A prompt runs with its own model unless run_model is given; get_prompt shows a prompt's run_options_schema."), nil
	})
}

package betterwaifu

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// How long the account and the model list are trusted.
const (
	accountTTL = 30 * time.Second
	modelsTTL  = 10 * time.Minute
)

// account reads the key's account, or its recent reading.
func (d *Toolset) account(ctx context.Context, c *bwapi.Client, tenant string, fresh bool) (*bwapi.Account, error) {
	if a, ok := d.accounts.get(tenant, accountTTL); ok && !fresh {
		return a, nil
	}
	a, err := c.Account(ctx)
	if err != nil {
		return nil, err
	}
	d.accounts.put(tenant, a)
	return a, nil
}

// preflight refuses, before anything is queued or sent, a generation the
// account cannot pay for: no active subscription, or no credits. The cost
// of a generation is not documented, so credits above zero pass.
func (d *Toolset) preflight(ctx context.Context, c *bwapi.Client, tenant string) error {
	a, err := d.account(ctx, c, tenant, false)
	if err != nil {
		return err
	}
	switch {
	case a.Subscription == nil:
		return &tools.Error{Expected: true, Msg: "The BetterWaifu account has no subscription, which the API requires; " +
			"nothing was submitted. Subscribe at https://betterwaifu.com, then try again."}
	case !a.Subscription.Active():
		return &tools.Error{Expected: true, Msg: fmt.Sprintf("The BetterWaifu subscription is %q, not active, and the API "+
			"requires an active one; nothing was submitted. Renew it at https://betterwaifu.com, then try again.", a.Subscription.Status)}
	case a.Credits <= 0:
		return &tools.Error{Expected: true, Msg: "The BetterWaifu account has no credits left; nothing was submitted. " +
			"Top up at https://betterwaifu.com, then try again."}
	}
	return nil
}

// models reads the model list, or its recent reading.
func (d *Toolset) modelList(ctx context.Context, c *bwapi.Client, tenant string) ([]bwapi.Model, error) {
	if ms, ok := d.models.get(tenant, modelsTTL); ok {
		return ms, nil
	}
	ms, err := c.Models(ctx)
	if err != nil {
		return nil, err
	}
	d.models.put(tenant, ms)
	return ms, nil
}

// pickModel checks model_version_id against the model list, or picks the
// first safe-for-work model when none is given.
func (d *Toolset) pickModel(ctx context.Context, c *bwapi.Client, tenant string, id int64) (bwapi.Model, error) {
	ms, err := d.modelList(ctx, c, tenant)
	if err != nil {
		return bwapi.Model{}, err
	}
	if id == 0 {
		for _, m := range ms {
			if !m.NSFW {
				return m, nil
			}
		}
		if len(ms) > 0 {
			return ms[0], nil
		}
		return bwapi.Model{}, &tools.Error{Expected: true, Msg: "BetterWaifu lists no model that can generate; nothing was submitted."}
	}
	if i := slices.IndexFunc(ms, func(m bwapi.Model) bool { return m.ID == id }); i >= 0 {
		return ms[i], nil
	}
	choices := make([]string, 0, min(len(ms), 20))
	for _, m := range ms[:min(len(ms), 20)] {
		choices = append(choices, describeModel(m))
	}
	return bwapi.Model{}, tools.Invalidf("model_version_id %d is not a BetterWaifu model that can generate; nothing was "+
		"submitted. Choose one of (id: model, version, base model):\n- %s", id, strings.Join(choices, "\n- "))
}

func describeModel(m bwapi.Model) string {
	s := fmt.Sprintf("%d: %s %s (%s)", m.ID, m.ModelName, m.Name, m.BaseModel)
	if m.NSFW {
		s += ", NSFW"
	}
	return s
}

// ListModelsInput is the argument of betterwaifu_list_models.
type ListModelsInput struct {
	BaseModel   string `json:"base_model,omitempty" jsonschema_description:"e.g. Pony."`
	IncludeNSFW bool   `json:"include_nsfw,omitempty"`
}

// ListModelsOutput is the result of betterwaifu_list_models.
type ListModelsOutput struct {
	Models []ModelView `json:"models"`
	Count  int         `json:"count"`
}

// ModelView is one model.
type ModelView struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	ModelName string `json:"model_name"`
	BaseModel string `json:"base_model"`
	NSFW      bool   `json:"nsfw"`
}

// JSONSchema declares a model as a plain object, to keep tools/list small;
// its fields are in the README.
func (ModelView) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

func listModels(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:        "betterwaifu_list_models",
		Title:       "List image models",
		Description: "Image models (NSFW only with include_nsfw): ids for model_version_id.",
		Hints:       tools.ReadOnlyHints,
	}, func(ctx context.Context, in ListModelsInput) (tools.Result[ListModelsOutput], error) {
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[ListModelsOutput]{}, err
		}
		ms, err := d.modelList(ctx, c, tenant)
		if err != nil {
			return tools.Result[ListModelsOutput]{}, err
		}
		out := ListModelsOutput{Models: []ModelView{}}
		hidden := 0
		base := strings.TrimSpace(in.BaseModel)
		for _, m := range ms {
			if base != "" && !strings.EqualFold(m.BaseModel, base) {
				continue
			}
			if m.NSFW && !in.IncludeNSFW {
				hidden++
				continue
			}
			out.Models = append(out.Models, ModelView{ID: m.ID, Name: m.Name, ModelName: m.ModelName, BaseModel: m.BaseModel, NSFW: m.NSFW})
		}
		out.Count = len(out.Models)
		var b strings.Builder
		fmt.Fprintf(&b, "%s", plural(out.Count, "model", "models"))
		if base != "" {
			fmt.Fprintf(&b, " with base model %q", base)
		}
		b.WriteString(" (id: model, version, base model):\n")
		for _, m := range out.Models {
			fmt.Fprintf(&b, "- %s\n", describeModel(bwapi.Model{ID: m.ID, ModelName: m.ModelName, Name: m.Name, BaseModel: m.BaseModel, NSFW: m.NSFW}))
		}
		if hidden > 0 {
			fmt.Fprintf(&b, "%s hidden; pass include_nsfw=true to list them.\n", plural(hidden, "NSFW model", "NSFW models"))
		}
		b.WriteString("Next: betterwaifu_generate with model_version_id=<id>.")
		return tools.Text(out, b.String()), nil
	})
}

// AccountInput is the (empty) argument of betterwaifu_get_account.
type AccountInput struct{}

// AccountOutput is the result of betterwaifu_get_account.
type AccountOutput struct {
	Username     string            `json:"username"`
	Credits      float64           `json:"credits"`
	Subscription *SubscriptionView `json:"subscription,omitempty"`
	// Budget is this server's spending budget for the key, when one is set.
	Budget *spending.View `json:"budget,omitempty"`
}

// SubscriptionView is an account's plan; absent when it has none.
type SubscriptionView struct {
	Status  string `json:"status"`
	Plan    string `json:"plan"`
	EndDate string `json:"end_date"`
}

// JSONSchema declares the subscription as a plain object, to keep
// tools/list small; its fields are in the README.
func (SubscriptionView) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object"}
}

func getAccount(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:        "betterwaifu_get_account",
		Title:       "Get BetterWaifu account",
		Description: "BetterWaifu credits and subscription (generating needs an active one).",
		Hints:       tools.ReadOnlyHints,
	}, func(ctx context.Context, _ AccountInput) (tools.Result[AccountOutput], error) {
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[AccountOutput]{}, err
		}
		a, err := d.account(ctx, c, tenant, true)
		if err != nil {
			return tools.Result[AccountOutput]{}, err
		}
		budget, err := d.Spending.Report(ctx, tenant)
		note := ""
		if err != nil {
			budget, note = nil, " The spending budget cannot be read just now (the shared state store is unavailable)."
		}
		out := AccountOutput{Username: a.Username, Credits: a.Credits, Budget: budget}
		text := fmt.Sprintf("BetterWaifu account %s: %g credits; no subscription (the API needs an active one).", a.Username, a.Credits)
		if s := a.Subscription; s != nil {
			out.Subscription = &SubscriptionView{Status: s.Status, Plan: s.Plan, EndDate: s.EndDate}
			text = fmt.Sprintf("BetterWaifu account %s: %g credits; subscription %s (%s), until %s.", a.Username, a.Credits, s.Plan, s.Status, s.EndDate)
		}
		return tools.Text(out, text+budget.Text()+note), nil
	})
}

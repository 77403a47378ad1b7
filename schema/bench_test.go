package schema

import (
	"encoding/json"
	"testing"
)

// benchConfig has ten variables of mixed kinds and one image.
const benchConfig = `{"variables":{
	"company_name":{"type":0,"description":"Name of the company you are writing to"},
	"recipient_role":{"type":0,"description":"Job title of the person receiving the email"},
	"value_proposition":{"type":0,"description":"One sentence on what you offer"},
	"episode_length":{"type":0,"description":"Target running time","defaultValues":["30 minutes"]},
	"extra_context":{"type":0,"description":"Anything else","allowEmpty":true,"defaultValues":[]},
	"Output_language":{"type":0,"description":"","defaultValues":["English"]},
	"objective":{"type":2,"description":"The campaign goal","options":{"clicks":"Clicks","awareness":"Awareness","conversions":"Conversions"}},
	"platform":{"type":2,"description":"Where the ads will run","options":{"google":"Google Ads","meta":"Meta (Facebook & Instagram)","linkedin":"LinkedIn","tiktok":"TikTok"}},
	"channels":{"type":2,"description":"Pick 1 to 3","multiple":{"min":1,"max":3},"options":{"x":"X (Twitter)","instagram":"Instagram caption","linkedin":"LinkedIn post","threads":"Threads","newsletter":"Email newsletter blurb"}},
	"Activity_level":{"type":2,"description":"","multiple":true,"options":{"Sedentary (desk job, little exercise)":"Sedentary","Moderate (exercise 3-5 days/week)":"Moderate","Very active (daily training or physical job)":"Very active"}}
},"images":[{"description":"A clear, front-facing photo"}]}`

const benchInputs = `{"textInputs":{"company_name":"Northwind","recipient_role":"Head of Ops","value_proposition":"We cut errors",
	"extra_context":"","objective":"clicks","platform":"linkedin","channels":["x","linkedin"],
	"Activity_level":["Moderate (exercise 3-5 days/week)"]},
	"imageInputs":[{"type":"url","url":"https://example.com/a.png"}]}`

// BenchmarkParseConvertValidate measures what a run_prompt call does with a
// prompt's config: parse it, build the input schema and validate the inputs.
//
//	go test -run=^$ -bench=ParseConvertValidate -benchmem ./schema/
func BenchmarkParseConvertValidate(b *testing.B) {
	raw := json.RawMessage(benchConfig)
	inputs := json.RawMessage(benchInputs)
	for b.Loop() {
		cfg, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if cfg.InputSchema(nil) == nil {
			b.Fatal("no schema")
		}
		if _, err := cfg.Validate(inputs); err != nil {
			b.Fatal(err)
		}
	}
}

package schema_test

import (
	"encoding/json"
	"fmt"

	"github.com/bpmcp/bpmcp/schema"
)

func ExampleConfig_Validate() {
	cfg, err := schema.Parse(json.RawMessage(`{"variables":{
		"platform":{"type":2,"options":{"google":"Google Ads","linkedin":"LinkedIn"}},
		"channels":{"type":2,"multiple":{"min":1,"max":2},"options":{"x":"X (Twitter)","threads":"Threads"}},
		"product":{"type":0,"defaultValues":["A meal kit"]}}}`))
	if err != nil {
		panic(err)
	}

	_, err = cfg.Validate(json.RawMessage(`{"textInputs":{"platform":"LinkedIn","channels":[]}}`))
	fmt.Println(err)

	in, err := cfg.Validate(json.RawMessage(`{"textInputs":{"platform":"linkedin","channels":["threads","x"]}}`))
	out, _ := json.Marshal(in)
	fmt.Println(string(out), err)
	// Output:
	// textInputs.platform: use the value "linkedin", not the label "LinkedIn"; textInputs.channels: choose at least 1 option, got 0; send an array of 1 to 2 of "x" (X (Twitter)), "threads" (Threads)
	// {"textInputs":{"channels":"threads, x","platform":"linkedin","product":"A meal kit"}} <nil>
}

func ExampleConfig_Example() {
	cfg, _ := schema.Parse(json.RawMessage(`{"variables":{"company_name":{"type":0},"tone":{"type":2,"options":{"friendly":"Friendly","formal":"Formal"}}},"images":[{"description":"Your logo"}]}`))
	ex, _ := json.Marshal(cfg.Example())
	fmt.Println(string(ex))
	// Output:
	// {"imageInputs":[{"type":"url","url":"https://example.com/image-1.png"}],"textInputs":{"company_name":"Example company name","tone":"friendly"}}
}

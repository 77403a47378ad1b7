package betterprompt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/internal/cassette"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
)

func describeError(err error) string {
	var te *tools.Error
	if errors.As(err, &te) {
		return te.Msg
	}
	if errors.Is(err, bpapi.ErrInvalidID) {
		return "Invalid arguments: " + err.Error()
	}
	if errors.Is(err, state.ErrUnavailable) {
		return "The server's shared state store cannot be reached, so the guards that protect your credits cannot " +
			"be checked; nothing was run or spent. Reading prompts and runs still works. Try again in a moment."
	}
	if errors.Is(err, context.Canceled) {
		return "The call was cancelled before it finished. Nothing else was lost; call the tool again if you still need the answer."
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "The BetterPrompt API did not answer in time. Try again in a moment."
	}
	var ae *bpapi.APIError
	if errors.As(err, &ae) {
		return describeAPIError(ae)
	}
	return "The BetterPrompt API could not be reached (" + err.Error() + "). Check the network or BETTERPROMPT_BASE_URL, then try again."
}

func describeAPIError(ae *bpapi.APIError) string {
	upstream := ae.Message
	if upstream == "" {
		upstream = http.StatusText(ae.HTTPStatus)
	}
	switch {
	case strings.HasPrefix(upstream, cassette.MissPrefix):
		return upstream // --replay has no recording of the request: its message says which, and what to do
	case ae.HTTPStatus == http.StatusUnauthorized || ae.Code == bpapi.CodeUnauthorized:
		return "BetterPrompt rejected the API key (401: " + upstream + "). Check BETTERPROMPT_API_KEY; keys are created at https://betterprompt.me/api-keys."
	case ae.HTTPStatus == http.StatusPaymentRequired || ae.Code == bpapi.CodePaymentRequired:
		return "BetterPrompt refused for lack of credits or of an active Pro plan (402: " + upstream + "). Call get_credits to see the balance; top up or renew the plan at https://betterprompt.me."
	case ae.HTTPStatus == http.StatusNotFound || ae.Code == bpapi.CodeNotFound:
		return "Not found (404: " + upstream + "). Check the id; prompt ids come from search_prompts and run ids from run_prompt."
	case ae.HTTPStatus == http.StatusUnprocessableEntity || ae.Code == bpapi.CodeValidation:
		if strings.Contains(strings.ToLower(upstream), "runoption") || strings.Contains(strings.ToLower(upstream), "runmodel") {
			return "BetterPrompt rejected the request (422: " + upstream + "). Call get_prompt to see run_options_schema (the options " +
				"this prompt's models take), or leave run_options and run_model out to use the prompt's own."
		}
		return "BetterPrompt rejected the request (422: " + upstream + "). Call get_prompt to see the inputs this prompt takes, fix them and try again."
	case ae.HTTPStatus == http.StatusTooManyRequests || ae.Code == bpapi.CodeTooManyRequests:
		return "BetterPrompt's rate limit was hit and retries did not get through (429). Wait a few seconds and try again."
	case ae.HTTPStatus == http.StatusGone || ae.Code == bpapi.CodeGone:
		return "The resource is no longer available (410: " + upstream + "). Output links expire 24 hours after generation."
	case ae.HTTPStatus == http.StatusBadRequest || ae.Code == bpapi.CodeBadRequest:
		return "BetterPrompt could not read the request (400: " + upstream + "). This is a bug in this server; please report it."
	case ae.Code == "":
		return fmt.Sprintf("BetterPrompt answered HTTP %d with an unexpected body (%s). The service may be having trouble; try again in a moment.", ae.HTTPStatus, upstream)
	default:
		return fmt.Sprintf("BetterPrompt answered HTTP %d %s (%s). Try again in a moment.", ae.HTTPStatus, ae.Code, upstream)
	}
}

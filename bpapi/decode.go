package bpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxExcerpt is the longest body excerpt, in characters, put into an error;
// maxMessage is the longest message taken from an error envelope.
const (
	maxExcerpt = 200
	maxMessage = 1000
)

// envelope is the wire shape of every answer. Fields are kept raw so that an
// answer of an unexpected shape is described rather than rejected blindly.
type envelope struct {
	Status  json.RawMessage `json:"status"`
	Message json.RawMessage `json:"message"`
	Error   json.RawMessage `json:"error"` // some proxies and frameworks use this instead of message
	Data    json.RawMessage `json:"data"`
}

// decodeEnvelope turns one HTTP answer into the envelope's data, or into an
// *APIError. Exactly one of the results is non-nil. It does not set the
// error's Method and Path.
//
// Success means a 2xx status, a JSON envelope whose status is "SUCCESS" and
// a data member that is not null. Anything else is an *APIError; when the
// body is not an envelope (empty, HTML, truncated or other JSON) its Code is
// empty and its Message says what was wrong, with an excerpt of the body.
func decodeEnvelope(status int, header http.Header, body []byte) (json.RawMessage, *APIError) {
	ok2xx := status >= 200 && status <= 299
	fail := func(code, msg string) (json.RawMessage, *APIError) {
		e := &APIError{HTTPStatus: status, Code: code, Message: msg}
		if d, ok := retryAfter(header); ok {
			e.RetryAfter = d
		}
		return nil, e
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return fail("", "empty response body")
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return fail("", notAnEnvelope(err, trimmed, body))
	}
	code, hasCode := jsonString(env.Status)
	msg := env.message()
	if ok2xx && hasCode && code == "SUCCESS" {
		if !isPresent(env.Data) {
			return fail("", "response has status SUCCESS but no data")
		}
		return env.Data, nil
	}
	if !hasCode {
		if msg == "" {
			msg = "response body is not a BetterPrompt envelope: " + excerpt(body)
		}
		_, e := fail("", msg)
		attachData(e, env.Data)
		return nil, e
	}
	if code == "SUCCESS" {
		// HTTP said no but the envelope said yes: trust neither.
		code = ""
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d with status SUCCESS", status)
		}
	}
	_, e := fail(code, msg)
	attachData(e, env.Data)
	return nil, e
}

// notAnEnvelope says why a body that failed to decode is not an envelope.
func notAnEnvelope(err error, trimmed, body []byte) string {
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ute):
		return "response body is JSON but not an object: " + excerpt(body)
	case !json.Valid(trimmed) && isTruncatedJSON(trimmed):
		return "response body is truncated JSON: " + excerpt(body)
	case trimmed[0] == '<':
		return "response body is HTML or XML, not JSON: " + excerpt(body)
	}
	return fmt.Sprintf("response body is not valid JSON (%s): %s", jsonReason(err), excerpt(body))
}

// message is the envelope's message (or error), shortened to maxMessage.
func (env *envelope) message() string {
	msg, _ := jsonString(env.Message)
	if msg == "" {
		msg, _ = jsonString(env.Error)
	}
	if msg == "" && isPresent(env.Message) {
		msg = excerpt(env.Message) // a message that is not a string
	}
	if utf8.RuneCountInString(msg) > maxMessage {
		msg = string([]rune(msg)[:maxMessage-1]) + "…"
	}
	return msg
}

// attachData copies an error envelope's data and its runId into e.
func attachData(e *APIError, data json.RawMessage) {
	if !isPresent(data) {
		return
	}
	e.Data = append([]byte(nil), bytes.TrimSpace(data)...)
	var ctx struct {
		RunID json.RawMessage `json:"runId"`
	}
	if json.Unmarshal(data, &ctx) == nil {
		if id, ok := jsonString(ctx.RunID); ok {
			e.RunID = id
		}
	}
}

// isPresent reports whether a raw member exists and is not null.
func isPresent(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// jsonString decodes raw as a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// isTruncatedJSON reports whether b looks like the start of a JSON document
// that was cut off.
func isTruncatedJSON(b []byte) bool {
	if b[0] != '{' && b[0] != '[' {
		return false
	}
	err := json.Unmarshal(b, new(json.RawMessage))
	var se *json.SyntaxError
	return errors.As(err, &se) && se.Offset >= int64(len(b))
}

// jsonReason shortens an encoding/json error to its reason.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	return err.Error()
}

// excerpt returns at most maxExcerpt characters of b for an error message:
// valid UTF-8, control characters turned into spaces, runs of white space
// collapsed to one space.
func excerpt(b []byte) string {
	const scan = 4 * maxExcerpt * utf8.UTFMax
	if len(b) > scan {
		b = b[:scan]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxExcerpt {
		s = string([]rune(s)[:maxExcerpt-1]) + "…"
	}
	if s == "" {
		return "(blank)"
	}
	return s
}

// decodeAnswer decodes one complete HTTP answer: the envelope, then its
// data into out, then check (when not nil). It returns nil on success, and
// otherwise the *APIError to report (without Method and Path). A 2xx whose
// data does not fit out, or fails check, is an *APIError with an empty Code.
//
// Decoding is lenient: unknown fields are ignored and missing ones stay zero.
// A member whose JSON type does not fit its Go field is skipped (the field
// stays zero) and named in skipped rather than failing the whole answer; a
// payload that does not fit at all (a string where an object belongs) is an
// error.
func decodeAnswer(status int, header http.Header, body []byte, out any, check func() string) (skipped string, apiErr *APIError) {
	data, apiErr := decodeEnvelope(status, header, body)
	if apiErr != nil {
		return "", apiErr
	}
	err := json.Unmarshal(data, out)
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		skipped, err = ute.Field, nil
	}
	if err == nil && check != nil {
		if msg := check(); msg != "" {
			err = errors.New(msg)
		}
	}
	if err != nil {
		return "", &APIError{HTTPStatus: status, Message: fmt.Sprintf(
			"response data is not usable (%s): %s", jsonReason(err), excerpt(data))}
	}
	return skipped, nil
}

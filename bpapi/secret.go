package bpapi

import "github.com/bpmcp/bpmcp/internal/secret"

// APIKey is a BetterPrompt API key: a secret.String, which never prints
// itself.
type APIKey = secret.String

// redacted replaces the key wherever an answer echoes it.
const redacted = secret.Placeholder

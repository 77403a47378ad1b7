// Package seal authenticates and encrypts small pieces of state that a
// client carries between two requests (the request state of an MCP
// input_required result), so that it cannot be read, forged, or used after
// its time limit. Every replica that shares the secret can open what
// another sealed.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sealer seals and opens values with one key.
type Sealer struct {
	aead cipher.AEAD
	now  func() time.Time
}

// ErrInvalid is the error of a sealed value that was tampered with, sealed
// with another key, or is not a sealed value at all.
var ErrInvalid = errors.New("the sealed state is not valid")

// ErrExpired is the error of a sealed value past its time limit.
var ErrExpired = errors.New("the sealed state has expired")

// New returns a Sealer whose key is derived from secret. An empty secret
// makes a random key, which only this process can open.
func New(secret []byte) *Sealer {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	key := sha256.Sum256(append([]byte("bpmcp seal v1\x00"), secret...))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead, now: time.Now}
}

type envelope struct {
	Exp  int64           `json:"exp"` // Unix seconds
	Data json.RawMessage `json:"data"`
}

// Seal returns v, encrypted and authenticated, valid for ttl, as URL-safe
// text.
func (s *Sealer) Seal(v any, ttl time.Duration) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	plain, err := json.Marshal(envelope{Exp: s.now().Add(ttl).Unix(), Data: data})
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, nil)), nil
}

// Open decodes what Seal made into v: ErrInvalid when it was not sealed
// with this key or was changed, ErrExpired past its time limit.
func (s *Sealer) Open(sealed string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n+s.aead.Overhead() {
		return ErrInvalid
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return ErrInvalid
	}
	var env envelope
	if json.Unmarshal(plain, &env) != nil {
		return ErrInvalid
	}
	if s.now().Unix() > env.Exp {
		return ErrExpired
	}
	if json.Unmarshal(env.Data, v) != nil {
		return ErrInvalid
	}
	return nil
}

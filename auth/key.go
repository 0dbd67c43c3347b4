package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// API keys look like "aisle_" followed by 52 lowercase base32 characters:
// 256 random bits. The prefix makes leaked keys easy to spot by secret
// scanners; only the SHA-256 of the whole key is stored.
const (
	keyPrefix     = "aisle_"
	keyRandomSize = 32
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// keyLength is the length of a well-formed key.
var keyLength = len(keyPrefix) + keyEncoding.EncodedLen(keyRandomSize)

// NewKey returns a fresh random API key and its hash (HashKey(key)).
func NewKey() (key string, hash []byte) {
	b := make([]byte, keyRandomSize)
	rand.Read(b) // never fails: crypto/rand aborts the program instead
	key = keyPrefix + keyEncoding.EncodeToString(b)
	return key, HashKey(key)
}

// HashKey is the one definition of how an API key is stored and looked up:
// the SHA-256 of the key's text. A fast hash is enough because keys carry
// 256 random bits; there is nothing to brute-force.
func HashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// wellFormed reports whether s has the shape of a key NewKey returns, so
// that garbage is rejected without a database lookup.
func wellFormed(s string) bool {
	if len(s) != keyLength || !strings.HasPrefix(s, keyPrefix) {
		return false
	}
	for _, r := range s[len(keyPrefix):] {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}

package runs

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

// A local handle is a UUID (version 8, a custom layout) that says, even to
// a process that never saw it (after a restart, or another replica), when
// its job was submitted and of which kind:
//
//	bytes 0-5    submission time, Unix milliseconds
//	byte  6      version 8, 4 random bits
//	byte  7      random
//	byte  8      RFC 9562 variant, 6 random bits
//	byte  9      handleMark: this layout
//	bytes 10-11  random
//	bytes 12-15  the first 4 bytes of sha256(kind)
//
// The kind tag lets the job list be filtered to jobs of the same kind when
// the handle is all that is left.
const handleMark = 0xb7

// NewHandle makes a local handle for a job of kind submitted at.
func NewHandle(at time.Time, kind string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16|uint64(binary.BigEndian.Uint16(b[6:8])))
	b[6] = 0x80 | b[6]&0x0f // version 8
	b[8] = 0x80 | b[8]&0x3f // RFC 9562 variant
	b[9] = handleMark
	tag := sha256.Sum256([]byte(kind))
	copy(b[12:], tag[:4])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// HandleTime returns the submission time in a handle made by NewHandle; ok
// is false for any other id.
func HandleTime(id string) (time.Time, bool) {
	if len(id) != 36 || id[14] != '8' || !strings.ContainsRune("89abAB", rune(id[19])) {
		return time.Time{}, false
	}
	raw, err := hex.DecodeString(id[:8] + id[9:13])
	if err != nil {
		return time.Time{}, false
	}
	at := time.UnixMilli(int64(binary.BigEndian.Uint64(append([]byte{0, 0}, raw...))))
	// A handle is made by this program: not before it existed, not in the future.
	if at.Before(handleEpoch) || at.After(time.Now().Add(time.Minute)) {
		return time.Time{}, false
	}
	return at, true
}

// HandleKindMatcher returns a test for kinds that fit the kind tag of handle
// id; handles made before the tag existed match every kind.
func HandleKindMatcher(id string) func(kind string) bool {
	if len(id) != 36 || !strings.EqualFold(id[21:23], hex.EncodeToString([]byte{handleMark})) {
		return func(string) bool { return true }
	}
	tag := strings.ToLower(id[28:36])
	return func(kind string) bool {
		sum := sha256.Sum256([]byte(kind))
		return hex.EncodeToString(sum[:4]) == tag
	}
}

// handleEpoch predates every handle this program has made.
var handleEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

package fakeapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// handleMedia serves GET /files/{runId}/{n}.{ext}?expires=<unix>: the bytes
// of a finished run's n-th output (1-based), public like a CDN URL. A URL
// whose expires parameter differs from the one the fake issued is a 404 (as
// a bad signature would be); after expiry on the Now clock it is a 410.
func (s *Server) handleMedia(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("runId")
	nStr, ext, _ := strings.Cut(r.PathValue("file"), ".")
	n, err := strconv.Atoi(nStr)
	if !isUUID(id) || err != nil || n < 1 {
		writeError(w, http.StatusNotFound, "File not found")
		return
	}
	s.mu.Lock()
	s.settleLocked(time.Now())
	rn := s.runs[strings.ToLower(id)]
	var out Output
	var expires time.Time
	ok := rn != nil && rn.final && n <= len(rn.prompt.Outputs)
	if ok {
		out, expires = rn.prompt.Outputs[n-1], rn.expiresAt
		ok = (out.Type == "image" || out.Type == "video") && out.File == ext
	}
	s.mu.Unlock()
	if !ok || r.URL.Query().Get("expires") != strconv.FormatInt(expires.Unix(), 10) {
		writeError(w, http.StatusNotFound, "File not found")
		return
	}
	if !s.opts.Now().Before(expires) {
		writeError(w, http.StatusGone, "The resource is no longer available")
		return
	}
	var body []byte
	var ctype string
	switch ext {
	case "png":
		body, ctype = MediaPNG(id, n), "image/png"
	default:
		body, ctype = MediaMP4(id, n), "video/mp4"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=86400")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// MediaPNG returns the PNG the fake serves as output n (1-based) of run
// runID: a small valid image, the same for the same run and index.
func MediaPNG(runID string, n int) []byte {
	seed := sha256.Sum256([]byte(strings.ToLower(runID) + "/" + strconv.Itoa(n)))
	const size = 32
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	a := color.NRGBA{seed[0], seed[1], seed[2], 255}
	b := color.NRGBA{seed[3], seed[4], seed[5], 255}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if (x/8+y/8)%2 == 0 {
				img.SetNRGBA(x, y, a)
			} else {
				img.SetNRGBA(x, y, b)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("fakeapi: png: " + err.Error())
	}
	return buf.Bytes()
}

// MediaMP4 returns the MP4 the fake serves as output n (1-based) of run
// runID: an ftyp box, a moov box with a movie header (mvhd) and a udta box
// carrying the run id, the same for the same run and index. It has no
// tracks, so it parses but does not play.
func MediaMP4(runID string, n int) []byte {
	box := func(typ string, payload ...[]byte) []byte {
		size := 8
		for _, p := range payload {
			size += len(p)
		}
		b := binary.BigEndian.AppendUint32(nil, uint32(size))
		b = append(b, typ...)
		for _, p := range payload {
			b = append(b, p...)
		}
		return b
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

	ftyp := box("ftyp", []byte("isom"), u32(0x200), []byte("isomiso2mp41"))

	var mvhd []byte
	mvhd = append(mvhd, 0, 0, 0, 0)      // version 0, flags
	mvhd = append(mvhd, u32(0)...)       // creation time
	mvhd = append(mvhd, u32(0)...)       // modification time
	mvhd = append(mvhd, u32(1000)...)    // timescale
	mvhd = append(mvhd, u32(4000)...)    // duration: 4 s
	mvhd = append(mvhd, u32(0x10000)...) // rate 1.0
	mvhd = append(mvhd, 0x01, 0x00)      // volume 1.0
	mvhd = append(mvhd, make([]byte, 10)...)
	for _, v := range []uint32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000} { // unity matrix
		mvhd = append(mvhd, u32(v)...)
	}
	mvhd = append(mvhd, make([]byte, 24)...) // pre_defined
	mvhd = append(mvhd, u32(1)...)           // next_track_ID

	note := []byte("bpmcp fakeapi run " + strings.ToLower(runID) + " output " + strconv.Itoa(n))
	moov := box("moov", box("mvhd", mvhd), box("udta", box("\xa9cmt", note)))
	return append(ftyp, moov...)
}

package preview_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/tools/preview"
)

// noisy is an image that compresses badly, so that its previews are large.
func noisy(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			seed = seed*1664525 + 1013904223
			img.Set(x, y, color.RGBA{uint8(seed >> 24), uint8(seed >> 16), uint8(seed >> 8), 255})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// Large images are downscaled to fit; all previews together stay under the
// budget, at a smaller size if need be, and what cannot be shown is said.
func TestImagesStayUnderTheBudget(t *testing.T) {
	big := noisy(2400, 1600)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/gone.png") {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(big)
	}))
	defer srv.Close()
	urls := []string{srv.URL + "/1.png", srv.URL + "/2.png", srv.URL + "/3.png", srv.URL + "/4.png", srv.URL + "/gone.png", "javascript:alert(1)"}
	contents, note := preview.Images(context.Background(), srv.Client(), urls, preview.Budget)
	total := 0
	for _, c := range contents {
		ic := c.(mcp.ImageContent)
		total += len(ic.Data)
		raw, err := base64.StdEncoding.DecodeString(ic.Data)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() > 768 || b.Dy() > 768 || b.Dx() != b.Dy()*3/2 {
			t.Errorf("preview of %dx%d", b.Dx(), b.Dy())
		}
	}
	if len(contents) == 0 || total > preview.Budget {
		t.Errorf("%d previews, %d bytes of base64 (budget %d)", len(contents), total, preview.Budget)
	}
	if !strings.Contains(note, "image 5") || !strings.Contains(note, "answered 404") || !strings.Contains(note, "image 6") {
		t.Errorf("note %q", note)
	}
	t.Logf("%d previews in %d bytes; note: %s", len(contents), total, note)
}

// pngHeader is a PNG whose header declares a w×h RGBA image but whose data
// is a few bytes: a decompression bomb's shape, without its data.
func pngHeader(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		buf.Write(n[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		buf.WriteString(typ)
		buf.Write(data)
		binary.BigEndian.PutUint32(n[:], c.Sum32())
		buf.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8 bits, RGBA
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 64))
	_ = zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return buf.Bytes()
}

// An image whose header declares more pixels than a preview can need is
// refused before its pixels are allocated: a few KB of PNG must not make
// the server allocate hundreds of MB (a decompression bomb).
func TestHugeImagesAreRefusedBeforeDecoding(t *testing.T) {
	bomb := pngHeader(10000, 10000) // 400 MB as RGBA
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bomb) }))
	defer srv.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	contents, note := preview.Images(context.Background(), srv.Client(), []string{srv.URL + "/bomb.png"}, preview.Budget)
	runtime.ReadMemStats(&after)
	if len(contents) != 0 || !strings.Contains(note, "image 1") {
		t.Errorf("%d previews, note %q", len(contents), note)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("a %d-byte image made the server allocate %d MB", len(bomb), alloc>>20)
	}
}

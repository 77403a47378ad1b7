package preview_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
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

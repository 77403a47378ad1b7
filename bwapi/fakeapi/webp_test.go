package fakeapi

import (
	"bytes"
	"image/color"
	"testing"

	"golang.org/x/image/webp"
)

// The fake's images are real WebP files: a decoder reads them back with
// their size and colour.
func TestSolidWebPDecodes(t *testing.T) {
	for _, tc := range []struct {
		w, h int
		c    color.NRGBA
	}{{1, 1, color.NRGBA{255, 0, 0, 255}}, {832, 1216, color.NRGBA{0xf4, 0x9a, 0xc8, 255}}, {7, 3, color.NRGBA{1, 2, 3, 128}}} {
		b := solidWebP(tc.w, tc.h, tc.c)
		img, err := webp.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%dx%d: %v (%d bytes)", tc.w, tc.h, err, len(b))
		}
		if got := img.Bounds().Size(); got.X != tc.w || got.Y != tc.h {
			t.Errorf("size %v, want %dx%d", got, tc.w, tc.h)
		}
		got := color.NRGBAModel.Convert(img.At(tc.w/2, tc.h/2)).(color.NRGBA)
		if got != tc.c {
			t.Errorf("%dx%d: colour %v, want %v", tc.w, tc.h, got, tc.c)
		}
	}
}

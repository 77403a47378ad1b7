// Package preview embeds image outputs in a tool result, for hosts that
// show image content but not links: each image is fetched, downscaled and
// re-encoded as a JPEG, and the previews together keep the result under a
// size budget (about 700 KB by default). URLs and resource links stay in
// the result; previews only add to it.
package preview

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // decoders the outputs may need
	"image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
	"time"

	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // BetterWaifu's images

	"github.com/mark3labs/mcp-go/mcp"
)

// Budget is the size a result with previews stays under, in bytes of
// base64 image data: hosts refuse results near 1 MB.
const Budget = 700 * 1024

// TimeLimit bounds the fetching of all the previews of one result.
const TimeLimit = 10 * time.Second

// maxFetch bounds one image's download.
const maxFetch = 25 << 20

// maxPixels bounds the size an image may declare (width × height): its
// pixels are allocated before its data is read, so a small file that
// declares a huge image (a decompression bomb) would take gigabytes.
const maxPixels = 40_000_000

// edges are the longest sides tried, largest first, until the previews fit.
var edges = []int{768, 512, 384, 256}

// Images fetches urls (http or https only) with client (nil:
// http.DefaultClient, a request of 15 s each) and returns their previews
// as image content, within budget bytes of base64, and a note that says
// which could not be shown and why ("" when all were).
func Images(ctx context.Context, client *http.Client, urls []string, budget int) ([]mcp.Content, string) {
	if client == nil {
		client = http.DefaultClient
	}
	var imgs []image.Image
	var failed []string
	for i, u := range urls {
		img, err := fetch(ctx, client, u)
		if err != nil {
			failed = append(failed, fmt.Sprintf("image %d (%v)", i+1, err))
			continue
		}
		imgs = append(imgs, img)
	}
	// The largest size at which every image fits; at the smallest, as many
	// as fit.
	for i, edge := range edges {
		out, used := encodeAll(imgs, edge, budget)
		if used < len(imgs) && i < len(edges)-1 {
			continue
		}
		if left := len(imgs) - used; left > 0 {
			failed = append(failed, fmt.Sprintf("%d more image(s), to keep the result under %d KB", left, budget/1024))
		}
		return out, note(failed)
	}
	return nil, note(failed)
}

func note(failed []string) string {
	if len(failed) == 0 {
		return ""
	}
	return "No preview of " + joinAnd(failed) + "; the links above still work."
}

func joinAnd(s []string) string {
	switch len(s) {
	case 1:
		return s[0]
	case 2:
		return s[0] + " and " + s[1]
	}
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		if i == len(s)-1 {
			out += "and "
		}
		out += x
	}
	return out
}

// encodeAll encodes images at most edge pixels on their longest side, in
// order, while they fit in budget; used is how many did.
func encodeAll(imgs []image.Image, edge, budget int) (out []mcp.Content, used int) {
	size := 0
	for _, img := range imgs {
		data, err := encode(img, edge)
		if err != nil {
			continue
		}
		b64 := base64.StdEncoding.EncodeToString(data)
		if size+len(b64) > budget {
			break
		}
		size += len(b64)
		out = append(out, mcp.NewImageContent(b64, "image/jpeg"))
		used++
	}
	return out, used
}

// fetch downloads and decodes one image.
func fetch(ctx context.Context, client *http.Client, raw string) (image.Image, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("not an http(s) link")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, errors.New("it could not be downloaded")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("its link answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetch))
	if err != nil {
		return nil, errors.New("it could not be downloaded")
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("it is not an image this server can read")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("it is too large (%d×%d pixels)", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("it is not an image this server can read")
	}
	return img, nil
}

// encode scales img to fit edge and encodes it as a JPEG, on white where
// it was transparent.
func encode(img image.Image, edge int) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > edge || h > edge {
		if w >= h {
			w, h = edge, max(1, h*edge/w)
		} else {
			w, h = max(1, w*edge/h), edge
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, b, xdraw.Over, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 80}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Add appends to content the previews of the images at urls, and a note
// when some could not be shown, within Budget less what content already
// holds.
func Add(ctx context.Context, content []mcp.Content, urls []string) []mcp.Content {
	if len(urls) == 0 {
		return content
	}
	used := 0
	for _, c := range content {
		switch c := c.(type) {
		case mcp.TextContent:
			used += len(c.Text)
		case mcp.ImageContent:
			used += len(c.Data)
		}
	}
	// Previews must not hold the answer past the host's timeout: at most
	// this long for all of them, then the result goes without the rest.
	ctx, cancel := context.WithTimeout(ctx, TimeLimit)
	defer cancel()
	imgs, note := Images(ctx, nil, urls, max(Budget-used, 0))
	content = append(content, imgs...)
	if note != "" {
		content = append(content, mcp.NewTextContent(note))
	}
	return content
}

// Wanted says whether a call shows previews: as it asks (inline_images),
// or else as the server is set (--inline-previews).
func Wanted(ask *bool, serverDefault bool) bool {
	if ask != nil {
		return *ask
	}
	return serverDefault
}

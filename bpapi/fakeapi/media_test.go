package fakeapi

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMediaOutputs(t *testing.T) {
	h := start(t, func(o *Options) { o.TimeScale = 0.001 })
	r := h.call("POST", "/runs", iconBody)
	expect(t, r, 200, "SUCCESS", "")
	var out runOut
	r.data(t, &out)
	if len(out.Outputs) != 2 {
		t.Fatalf("outputs %s", r.env.Data)
	}
	root := strings.TrimSuffix(h.base, "/v1")
	ri, _ := h.s.Run(out.RunID)
	wantExpiry := ri.FinishedAt.Add(24 * time.Hour).Unix()
	var first []byte
	for i, o := range out.Outputs {
		u, err := url.Parse(o.Data)
		if err != nil || o.Type != "image" {
			t.Fatalf("output %+v", o)
		}
		wantPath := "/files/" + out.RunID + "/" + strconv.Itoa(i+1) + ".png"
		if !strings.HasPrefix(o.Data, root+wantPath+"?expires=") || u.Query().Get("expires") != strconv.FormatInt(wantExpiry, 10) {
			t.Fatalf("url %s, want %s%s?expires=%d", o.Data, root, wantPath, wantExpiry)
		}
		res := h.send("GET", o.Data, nil, nil) // no key: public URL
		if res.status != 200 || res.header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET %s: %d %s", o.Data, res.status, res.header.Get("Content-Type"))
		}
		img, err := png.Decode(bytes.NewReader(res.raw))
		if err != nil || img.Bounds().Dx() == 0 {
			t.Fatalf("not a PNG: %v", err)
		}
		if !bytes.Equal(res.raw, MediaPNG(out.RunID, i+1)) {
			t.Fatal("bytes not deterministic")
		}
		if i == 0 {
			first = res.raw
		} else if bytes.Equal(first, res.raw) {
			t.Fatal("two outputs have the same bytes")
		}
	}
	// The same URLs are returned by GET /v1/runs/{id} and the list.
	again := h.call("GET", "/runs/"+out.RunID, nil)
	if !strings.Contains(string(again.raw), out.Outputs[0].Data) {
		t.Fatalf("GET run outputs %s", again.env.Data)
	}
	// Tampered or unknown URLs are 404; a HEAD works.
	for _, bad := range []string{
		strings.Replace(out.Outputs[0].Data, "expires=", "expires=1", 1),
		strings.Split(out.Outputs[0].Data, "?")[0],
		strings.Replace(out.Outputs[0].Data, "/1.png", "/3.png", 1),
		strings.Replace(out.Outputs[0].Data, "/1.png", "/1.mp4", 1),
		strings.Replace(out.Outputs[0].Data, out.RunID, unknownUUID, 1),
		root + "/files/xyz/1.png",
	} {
		expect(t, h.send("GET", bad, nil, nil), 404, "NOT_FOUND_ERROR", "")
	}
	// After 24 h of fake time: 410.
	h.clock.Advance(24*time.Hour + time.Second)
	expect(t, h.send("GET", out.Outputs[0].Data, nil, nil), 410, "GONE_ERROR", "no longer available")
}

func TestMediaVideo(t *testing.T) {
	h := start(t, func(o *Options) { o.TimeScale = 0.001; o.URLTTL = time.Hour })
	r := h.call("POST", "/runs", doorbellBody)
	expect(t, r, 200, "SUCCESS", "")
	var out runOut
	r.data(t, &out)
	if len(out.Outputs) != 1 || out.Outputs[0].Type != "video" || !strings.Contains(out.Outputs[0].Data, "/1.mp4?expires=") {
		t.Fatalf("outputs %s", r.env.Data)
	}
	res := h.send("GET", out.Outputs[0].Data, nil, nil)
	if res.status != 200 || res.header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("%d %s", res.status, res.header.Get("Content-Type"))
	}
	b := res.raw
	if len(b) < 16 || string(b[4:8]) != "ftyp" || string(b[8:12]) != "isom" {
		t.Fatalf("no ftyp box: % x", b[:16])
	}
	n := binary.BigEndian.Uint32(b[:4])
	if string(b[n+4:n+8]) != "moov" || int(n)+int(binary.BigEndian.Uint32(b[n:n+4])) != len(b) {
		t.Fatalf("moov box missing or sizes wrong")
	}
	if string(b[n+12:n+16]) != "mvhd" {
		t.Fatalf("no mvhd")
	}
	// Range requests work (players use them).
	req, _ := http.NewRequest("GET", out.Outputs[0].Data, nil)
	req.Header.Set("Range", "bytes=0-7")
	rr, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rr.Body.Close()
	if rr.StatusCode != http.StatusPartialContent {
		t.Fatalf("range: %d", rr.StatusCode)
	}
	// URLTTL applies.
	h.clock.Advance(time.Hour)
	expect(t, h.send("GET", out.Outputs[0].Data, nil, nil), 410, "GONE_ERROR", "")
}

func TestMediaBaseURL(t *testing.T) {
	h := start(t, func(o *Options) { o.BaseURL = "https://sandbox.example/v1/"; o.TimeScale = 0.001 })
	var out runOut
	h.call("POST", "/runs", iconBody).data(t, &out)
	if !strings.HasPrefix(out.Outputs[0].Data, "https://sandbox.example/files/"+out.RunID+"/1.png?expires=") {
		t.Fatalf("url %s", out.Outputs[0].Data)
	}
}

package fakeapi

import (
	"encoding/binary"
	"image/color"
)

// solidWebP returns a lossless WebP (VP8L) image of w×h pixels of one
// colour: a real image any decoder and browser shows, encoded in a few
// dozen bytes. With one colour, every prefix code has a single symbol,
// which costs no bits per pixel.
func solidWebP(w, h int, c color.NRGBA) []byte {
	var bw bitWriter
	bw.write(0x2f, 8) // VP8L signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(boolBit(c.A != 0xff), 1) // alpha is used
	bw.write(0, 3)                    // version
	bw.write(0, 1)                    // no transform
	bw.write(0, 1)                    // no colour cache
	bw.write(0, 1)                    // no meta prefix codes
	// Five prefix codes (green, red, blue, alpha, distance), each a simple
	// code of one 8-bit symbol.
	for _, sym := range []uint8{c.G, c.R, c.B, c.A, 0} {
		bw.write(1, 1) // simple code
		bw.write(0, 1) // one symbol
		bw.write(1, 1) // 8 bits
		bw.write(uint32(sym), 8)
	}
	data := bw.bytes()
	chunk := make([]byte, 0, 8+len(data)+1)
	chunk = append(chunk, "VP8L"...)
	chunk = binary.LittleEndian.AppendUint32(chunk, uint32(len(data)))
	chunk = append(chunk, data...)
	if len(data)%2 == 1 {
		chunk = append(chunk, 0)
	}
	out := make([]byte, 0, 12+len(chunk))
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(4+len(chunk)))
	out = append(out, "WEBP"...)
	return append(out, chunk...)
}

func boolBit(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// bitWriter packs bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf  []byte
	acc  uint64
	nacc uint
}

func (b *bitWriter) write(v uint32, n uint) {
	b.acc |= uint64(v&(1<<n-1)) << b.nacc
	b.nacc += n
	for b.nacc >= 8 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc >>= 8
		b.nacc -= 8
	}
}

func (b *bitWriter) bytes() []byte {
	if b.nacc > 0 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc, b.nacc = 0, 0
	}
	return b.buf
}

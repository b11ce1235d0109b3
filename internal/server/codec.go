package server

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// wireCodec is gRPC's proto codec, except that it sends an encoded
// message's bytes as they are: the overview a thousand watchers are sent
// is encoded once, not once for each (see Overviews).
type wireCodec struct{}

var protoCodec = encoding.GetCodecV2("proto")

// encoded is a message already in its wire form, sent as a pointer so that
// passing it to SendMsg allocates nothing. Its bytes are shared by every
// stream that sends it and must not change.
type encoded struct{ bufs mem.BufferSlice }

func newEncoded(b []byte) *encoded {
	// A SliceBuffer is never returned to a pool, so sharing it is safe.
	return &encoded{bufs: mem.BufferSlice{mem.SliceBuffer(b)}}
}

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encoded); ok {
		return e.bufs, nil
	}
	return protoCodec.Marshal(v)
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }

// Name is the proto codec's: on the wire nothing differs.
func (wireCodec) Name() string { return "proto" }

package wire_test

import (
	"fmt"
	"time"

	"github.com/strata-net/strata/node/internal/wire"
)

// A sender builds one packet: header, then chunks, into a reused buffer.
// A receiver walks the chunks and resolves NextUserData against the user
// data chunk before it.
func Example() {
	buf := make([]byte, 0, wire.MaxSessionPacketLength)
	buf = wire.AppendHeader(buf, wire.Header{
		Mode:         wire.ModeInitiator,
		HasTimestamp: true,
		Timestamp:    wire.TimestampAt(1500 * time.Millisecond),
	})
	first := wire.UserData{Fragmentation: wire.FragBegin, FlowID: 2, SequenceNumber: 10, FSNOffset: 1, Data: []byte("hel")}
	second := wire.UserData{Fragmentation: wire.FragEnd, FlowID: 2, SequenceNumber: 11, FSNOffset: 2, Data: []byte("lo")}
	buf = first.Append(buf)
	if second.Follows(first) {
		buf = second.Next().Append(buf) // 4 bytes instead of 7
	}

	h, n, err := wire.ParseHeader(buf)
	if err != nil {
		panic(err)
	}
	fmt.Println("timestamp", h.Timestamp)
	r := wire.NewChunkReader(buf[n:])
	var prev wire.UserData
	for {
		typ, payload, ok, err := r.Next()
		if err != nil || !ok {
			break
		}
		var u wire.UserData
		switch typ {
		case wire.ChunkUserData:
			u, _ = wire.ParseUserData(payload)
		case wire.ChunkNextUserData:
			next, _ := wire.ParseNextUserData(payload)
			u = next.Resolve(prev)
		}
		fmt.Printf("%v flow %d seq %d fsn %d %q\n", typ, u.FlowID, u.SequenceNumber, u.FSN(), u.Data)
		prev = u
	}
	// Output:
	// timestamp 375
	// UserData flow 2 seq 10 fsn 9 "hel"
	// NextUserData flow 2 seq 11 fsn 9 "lo"
}

// Acknowledging sequence numbers 1..5, 8..9 and 12: cumulative ack 5, then
// ranges above it, iterated without allocating.
func ExampleAppendAckRanges() {
	chunk, n, err := wire.AppendAckRanges(nil, 2, 64, 5, []wire.SeqRange{{From: 8, To: 9}, {From: 12, To: 12}}, 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d ranges: % x\n", n, chunk)
	a, _ := wire.ParseAckRanges(chunk[wire.ChunkHeaderLength:])
	it := a.Iter()
	for {
		from, to, ok := it.Next()
		if !ok {
			break
		}
		fmt.Println("received", from, "to", to)
	}
	// Output:
	// 2 ranges: 51 00 07 02 40 05 01 01 01 00
	// received 8 to 9
	// received 12 to 12
}

// Package group runs Strata's named groups on top of the overlay: a group
// specifier names the group and fixes what it allows, Join makes this node
// a member, Post floods messages to every member, and a publisher's byte
// stream is carried to every member by push-pull multicast with
// Reed-Solomon parity.
//
// # Joining
//
// The group ID is the specifier's (Specifier.ID): members joined with other
// options are in other groups. A node runs one overlay.Host; the group
// protocol's flows reach the group through a Mux, whose HandleFlow is the
// host's HostConfig.OnFlow. Every member keeps a link to each overlay
// neighbour (and to each member that linked to it): one control flow and
// one or more data flows each way.
//
// # Posting
//
// A post carries a random 128-bit ID and a hop limit. A member delivers a
// post once, remembers the last Config.PostMemory IDs, and passes new posts
// to every other neighbour. Posts are not signed.
//
// # Multicast
//
// The publisher cuts its stream into FEC blocks (fec.Encoder: K data
// fragments and M parity pieces; a block closes when full or BlockDelay
// after its first byte), signs each block's manifest (the SHA-256 of every
// piece) with Ed25519 when the specifier names a publisher key, and stamps
// it with its send time. Every member checks a manifest's signature, and
// every piece against its manifest, before it keeps, relays or decodes it
// (one exception: pieces pushed by the publisher's own node are relayed at
// once, see below);
// a neighbour that sends forged data is dropped for good.
//
// Pieces are pushed along trees, one per push class: piece i of a block
// belongs to class i mod PushNeighbourLimit, and a member asks one
// neighbour per class to push that class to it, so pushes never
// duplicate. A member chooses for each class a neighbour that holds fresh
// pieces of it and is nearest the publisher in that class's tree, in time:
// members advertise per class their hops and their delay from the
// publisher (the sum of half the smoothed round trip of each hop of their
// path), with poison reverse against two-member loops, and the delay
// through a neighbour is its advertised one plus half the round trip to
// it. A member chooses again as soon as a neighbour's advertisement
// changes its routes. It prefers distinct neighbours for distinct classes
// (one session cannot always carry the whole stream under loss), and
// drops a pusher whose pieces come much later than the others' (in every
// class at once when they come a quarter of the window late). To move a
// class to a nearer neighbour it asks that neighbour first (the
// subscription asks for an answer) and keeps the current pusher until the
// answer: a refusal leaves the class where it was. The publisher
// limits its push subscribers to SourcePushCopies per class and sends
// every piece to that many neighbours even while subscriptions change.
// The trees form before the stream: a member holding the publisher key
// (Config.PublisherKey) is their root from Join, before it publishes,
// unless it learns of a stream it did not publish (another instance of
// the publisher runs it), where it is a member like the others.
//
// A relay cannot check a piece before the block's manifest, which travels
// down the trees of ManifestCarriers classes only, so it holds pieces that
// come first. Pieces pushed by the publisher's own node are the exception:
// the publisher signs its node's peer ID (which the RTMFP session
// authenticates) and sends the signature to each neighbour, and a
// neighbour relays what that node pushes at once; its subscribers check
// the pieces when the manifest reaches them.
//
// As soon as a member holds k' pieces of a block it rebuilds the others,
// checks them against the manifest and relays them like received ones, so
// a member that misses a pusher still serves its own subscribers, and a
// lost piece never has to travel from the publisher again. It tells the
// pushers of the pieces it still lacked that it holds the block whole (a
// 9-byte have message), and they skip those pieces, queued or to come.
// Members
// advertise which pieces they hold every AvailabilityUpdatePeriod (complete
// blocks as one count); a block still short of k' pieces FetchPeriod after
// its first piece is completed by pulls from neighbours that advertised
// the missing pieces (the pieces of a class whose pusher changed while the
// block was short are pulled sooner: a round trip after the change, as
// neither pusher will send those that crossed the change) (the publisher last, within SourcePullShare; the
// others within RelayPullShare of what they received). A member whose
// share is spent answers a pull busy, and the asker turns to another
// holder at once; a piece not received within two FetchPeriods is asked
// again, of another holder first.
//
// Pieces travel with a deadline (the block's window minus RelayMargin):
// RTMFP abandons what is stale instead of delaying newer data behind it.
// A subscriber's output is the stream in order, with gaps for blocks that
// could not be rebuilt within WindowDuration.
//
// Control messages are msgpack maps (versioned, size-bounded, lengths
// checked against the input before decoding); malformed input is counted
// and dropped.
package group

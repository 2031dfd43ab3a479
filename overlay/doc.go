// Package overlay keeps a Kademlia mesh of the members of a group over RTMFP
// sessions and routes messages through it.
//
// Every member of a group has a 256-bit address in that group, derived from
// its RTMFP peer ID and the group ID (AddressOf), so one node sits at a
// different place in every group it joins and a group cannot be crowded by
// choosing peer IDs for another. A Group keeps a routing table of other
// members ordered by XOR distance (a go-libp2p-kbucket table), learns members
// with FIND_NODE-style lookups, keeps a bounded set of open sessions to
// neighbours (the closest members plus a few distant ones) and forwards
// messages greedily, hop by hop, to the member nearest any address.
//
// A Host owns a node's incoming sessions and flows and hands each flow to the
// group named in its metadata ("strata/overlay/1 <group ID hex>"), so several
// groups share one node and the sessions between the same two nodes.
//
// Control messages are msgpack maps carried one per RTMFP message on one flow
// per (peer, group) and direction; see Message. Everything that depends only
// on data (the codec, the routing decision, the member-count estimate, the
// table) is usable and tested without a network.
package overlay

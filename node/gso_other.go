//go:build !linux

package node

import "net"

const gsoSupported = false

func appendGSOControl(b []byte, size int) []byte { return b }

func enableGRO(*net.UDPConn) bool { return false }

var groControlSpace = 0

func groSegmentSize([]byte) int { return 0 }

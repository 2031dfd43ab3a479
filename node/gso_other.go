//go:build !linux

package node

const gsoSupported = false

func appendGSOControl(b []byte, size int) []byte { return b }

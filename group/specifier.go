package group

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// SpecifierScheme starts every group specifier.
const SpecifierScheme = "strata:group/"

// Limits of a specifier.
const (
	MaxSpecifierLen = 4096
	MaxNameLen      = 255
	MaxPasswordLen  = 255
)

// idDomain and passwordDomain separate the hashes of this package from any
// other SHA-256 use of the same bytes.
const (
	idDomain       = "strata group id v1\x00"
	passwordDomain = "strata group password v1\x00"
)

// ErrMalformedSpecifier is wrapped by every error of ParseSpecifier and
// Specifier.Validate.
var ErrMalformedSpecifier = errors.New("malformed group specifier")

// Specifier is a parsed group specifier: the readable string that names a
// group and fixes what the group allows. Its syntax is
//
//	strata:group/NAME[?OPTION[&OPTION]...]
//
// with OPTION one of
//
//	multicast               members relay live streams
//	posting                 members may post messages, flooded to all
//	routing                 members may route messages to a group address
//	replication             members replicate objects
//	publisher=KEY           only this Ed25519 key may publish streams
//	                        (base64url, no padding: 43 characters); needs multicast
//	password=TEXT           members must know TEXT to join
//	postingpassword=TEXT    posters must know TEXT; needs posting
//
// NAME and TEXT are percent-encoded: the characters A-Z a-z 0-9 - . _ ~
// and ! $ ' ( ) * + , ; : @ may appear as they are, every other byte as
// %XX ('+' is a plus, not a space); raw non-ASCII UTF-8 is accepted too.
// Decoded, they must be valid UTF-8 without control characters, 1 to 255
// bytes long. Options may come in any order, each at most once, and
// option names are lower case.
//
// The canonical form (Specifier.String) lists the options present in
// alphabetical order and escapes every byte outside A-Z a-z 0-9 - . _ ~ as
// %XX with upper-case hex. Two specifiers that differ only in option order
// or escaping are the same group; any other difference, an option more or
// less, another key or password, is another group.
type Specifier struct {
	// Name is the group's name, decoded.
	Name string
	// Multicast: members relay live streams (fragments with FEC).
	Multicast bool
	// Posting: members may post messages that flood the group.
	Posting bool
	// Routing: members may send messages routed to a group address.
	Routing bool
	// ObjectReplication: members replicate objects among themselves.
	ObjectReplication bool
	// PublisherKey, if set, is the only key whose signed blocks members
	// accept on a stream. Requires Multicast.
	PublisherKey ed25519.PublicKey
	// Password, if set, is needed to join. It enters the ID only as a
	// salted hash, so IDString can be shown without revealing it.
	Password string
	// PostingPassword, if set, is needed to post. Requires Posting.
	PostingPassword string
}

// option names, in canonical (alphabetical) order.
const (
	optMulticast       = "multicast"
	optPassword        = "password"
	optPosting         = "posting"
	optPostingPassword = "postingpassword"
	optPublisher       = "publisher"
	optReplication     = "replication"
	optRouting         = "routing"
)

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedSpecifier, fmt.Sprintf(format, a...))
}

// ParseSpecifier parses a group specifier (see the syntax above). Errors
// say what is wrong and where, but never quote a password.
func ParseSpecifier(s string) (Specifier, error) {
	if len(s) > MaxSpecifierLen {
		return Specifier{}, malformed("%d bytes, at most %d allowed", len(s), MaxSpecifierLen)
	}
	rest, ok := strings.CutPrefix(s, SpecifierScheme)
	if !ok {
		return Specifier{}, malformed("must start with %q", SpecifierScheme)
	}
	rawName, query, hasQuery := strings.Cut(rest, "?")
	var sp Specifier
	name, err := unescape(rawName)
	if err != nil {
		return Specifier{}, malformed("name: %v", err)
	}
	sp.Name = name
	if hasQuery {
		if query == "" {
			return Specifier{}, malformed("'?' without options")
		}
		seen := map[string]bool{}
		for i, opt := range strings.Split(query, "&") {
			key, val, hasVal := strings.Cut(opt, "=")
			if key == "" {
				return Specifier{}, malformed("option %d is empty", i+1)
			}
			if seen[key] {
				return Specifier{}, malformed("option %q appears twice", key)
			}
			seen[key] = true
			if err := sp.setOption(key, val, hasVal); err != nil {
				return Specifier{}, err
			}
		}
	}
	if err := sp.Validate(); err != nil {
		return Specifier{}, err
	}
	return sp, nil
}

func (sp *Specifier) setOption(key, val string, hasVal bool) error {
	flag := func(f *bool) error {
		if hasVal {
			return malformed("option %q takes no value", key)
		}
		*f = true
		return nil
	}
	text := func(f *string) error {
		if !hasVal || val == "" {
			return malformed("option %q needs a value", key)
		}
		v, err := unescape(val)
		if err != nil {
			return malformed("option %q: %v", key, err)
		}
		*f = v
		return nil
	}
	switch key {
	case optMulticast:
		return flag(&sp.Multicast)
	case optPosting:
		return flag(&sp.Posting)
	case optRouting:
		return flag(&sp.Routing)
	case optReplication:
		return flag(&sp.ObjectReplication)
	case optPassword:
		return text(&sp.Password)
	case optPostingPassword:
		return text(&sp.PostingPassword)
	case optPublisher:
		if !hasVal || val == "" {
			return malformed("option %q needs a key", key)
		}
		k, err := base64.RawURLEncoding.Strict().DecodeString(val)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return malformed("option %q: want a %d-byte Ed25519 public key in unpadded base64url (%d characters)",
				key, ed25519.PublicKeySize, base64.RawURLEncoding.EncodedLen(ed25519.PublicKeySize))
		}
		sp.PublisherKey = k
		return nil
	}
	return malformed("unknown option %q", key)
}

// Validate reports whether sp can be written as a specifier that parses
// back to it; use it on a Specifier built in code.
func (sp Specifier) Validate() error {
	if err := checkText(sp.Name, MaxNameLen); err != nil {
		return malformed("name: %v", err)
	}
	if sp.Password != "" {
		if err := checkText(sp.Password, MaxPasswordLen); err != nil {
			return malformed("option %q: %v", optPassword, err)
		}
	}
	if sp.PostingPassword != "" {
		if err := checkText(sp.PostingPassword, MaxPasswordLen); err != nil {
			return malformed("option %q: %v", optPostingPassword, err)
		}
		if !sp.Posting {
			return malformed("option %q needs option %q", optPostingPassword, optPosting)
		}
	}
	if sp.PublisherKey != nil {
		if len(sp.PublisherKey) != ed25519.PublicKeySize {
			return malformed("option %q: key is %d bytes, want %d", optPublisher, len(sp.PublisherKey), ed25519.PublicKeySize)
		}
		if !sp.Multicast {
			return malformed("option %q needs option %q", optPublisher, optMulticast)
		}
	}
	return nil
}

// checkText checks a decoded name or password.
func checkText(s string, maxLen int) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > maxLen:
		return fmt.Errorf("%d bytes, at most %d allowed", len(s), maxLen)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("control character U+%04X", r)
		}
	}
	return nil
}

// String returns the canonical form of sp, passwords included: it is the
// string to hand to another member.
func (sp Specifier) String() string { return sp.format(false) }

// IDString returns the canonical form with each password replaced by a
// salted SHA-256 hash of it. It is what ID hashes, and it can be logged.
func (sp Specifier) IDString() string { return sp.format(true) }

// ID returns the group ID: SHA-256 of a domain-separation prefix and
// IDString. Specifiers that parse to the same Specifier have the same ID.
func (sp Specifier) ID() [32]byte {
	h := sha256.New()
	h.Write([]byte(idDomain))
	h.Write([]byte(sp.IDString()))
	var id [32]byte
	h.Sum(id[:0])
	return id
}

func (sp Specifier) format(hashPasswords bool) string {
	var b strings.Builder
	b.WriteString(SpecifierScheme)
	b.WriteString(escape(sp.Name))
	sep := byte('?')
	add := func(key, val string, hasVal bool) {
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(key)
		if hasVal {
			b.WriteByte('=')
			b.WriteString(val)
		}
	}
	password := func(key, pw string) {
		if pw == "" {
			return
		}
		if !hashPasswords {
			add(key, escape(pw), true)
			return
		}
		// Salted with the option and the group name, so equal passwords
		// of different groups or roles hash differently.
		h := sha256.Sum256([]byte(passwordDomain + key + "\x00" + sp.Name + "\x00" + pw))
		add(key+"-sha256", hex.EncodeToString(h[:]), true)
	}
	if sp.Multicast {
		add(optMulticast, "", false)
	}
	password(optPassword, sp.Password)
	if sp.Posting {
		add(optPosting, "", false)
	}
	password(optPostingPassword, sp.PostingPassword)
	if sp.PublisherKey != nil {
		add(optPublisher, base64.RawURLEncoding.EncodeToString(sp.PublisherKey), true)
	}
	if sp.ObjectReplication {
		add(optReplication, "", false)
	}
	if sp.Routing {
		add(optRouting, "", false)
	}
	return b.String()
}

// unescaped reports whether c is written as is in the canonical form.
func unescaped(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// allowedRaw reports whether ParseSpecifier accepts c unescaped.
func allowedRaw(c byte) bool {
	return unescaped(c) || c >= 0x80 || strings.IndexByte("!$'()*+,;:@", c) >= 0
}

func escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unescaped(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// unescape decodes percent-encoding. Its errors give positions, not
// characters, since s may be a password.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("'%%' at byte %d is not followed by two hex digits", i)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("'%%' at byte %d is not followed by two hex digits", i)
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case allowedRaw(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("the character at byte %d must be percent-encoded (only A-Z a-z 0-9 -._~!$'()*+,;:@ may appear as they are)", i)
		}
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

package group

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// testKey is a fixed Ed25519 public key and its specifier encoding.
var (
	testKey    = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)
	testKeyB64 = base64.RawURLEncoding.EncodeToString(testKey)
)

func TestParseSpecifier(t *testing.T) {
	tests := []struct {
		in        string
		want      Specifier
		canonical string
	}{
		{"strata:group/news", Specifier{Name: "news"}, "strata:group/news"},
		{"strata:group/a?routing&posting&multicast&replication",
			Specifier{Name: "a", Multicast: true, Posting: true, Routing: true, ObjectReplication: true},
			"strata:group/a?multicast&posting&replication&routing"},
		{"strata:group/caf%c3%a9%20talk", Specifier{Name: "café talk"}, "strata:group/caf%C3%A9%20talk"},
		{"strata:group/café", Specifier{Name: "café"}, "strata:group/caf%C3%A9"},
		{"strata:group/a+b:c@d!", Specifier{Name: "a+b:c@d!"}, "strata:group/a%2Bb%3Ac%40d%21"},
		{"strata:group/live?publisher=" + testKeyB64 + "&multicast",
			Specifier{Name: "live", Multicast: true, PublisherKey: testKey},
			"strata:group/live?multicast&publisher=" + testKeyB64},
		{"strata:group/club?postingpassword=p%26q&posting&password=s3cret",
			Specifier{Name: "club", Posting: true, Password: "s3cret", PostingPassword: "p&q"},
			"strata:group/club?password=s3cret&posting&postingpassword=p%26q"},
	}
	for _, tt := range tests {
		sp, err := ParseSpecifier(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if !equalSpecifiers(sp, tt.want) {
			t.Errorf("%q: parsed %+v, want %+v", tt.in, sp, tt.want)
		}
		if got := sp.String(); got != tt.canonical {
			t.Errorf("%q: String() = %q, want %q", tt.in, got, tt.canonical)
		}
		again, err := ParseSpecifier(sp.String())
		if err != nil || again.ID() != sp.ID() {
			t.Errorf("%q: canonical form does not parse to the same group: %v", tt.in, err)
		}
	}
}

func equalSpecifiers(a, b Specifier) bool {
	return a.Name == b.Name && a.Multicast == b.Multicast && a.Posting == b.Posting && a.Routing == b.Routing &&
		a.ObjectReplication == b.ObjectReplication && bytes.Equal(a.PublisherKey, b.PublisherKey) &&
		a.Password == b.Password && a.PostingPassword == b.PostingPassword
}

func TestSpecifierEquivalentForms(t *testing.T) {
	groups := [][]string{
		{
			"strata:group/room?multicast&posting&routing",
			"strata:group/room?routing&multicast&posting",
			"strata:group/%72oom?posting&routing&multicast",
			"strata:group/%72%6F%6f%6D?posting&multicast&routing",
		},
		{
			"strata:group/a%20b?password=x%2By",
			"strata:group/a%20b?password=x+y",
		},
	}
	for _, g := range groups {
		first := mustParse(t, g[0])
		for _, s := range g[1:] {
			sp := mustParse(t, s)
			if sp.ID() != first.ID() || sp.String() != first.String() {
				t.Errorf("%q and %q: different groups (%q, %q)", g[0], s, first.String(), sp.String())
			}
		}
	}
}

func TestSpecifierDifferentOptionsDifferentIDs(t *testing.T) {
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	specs := []string{
		"strata:group/g",
		"strata:group/G",
		"strata:group/g2",
		"strata:group/g?multicast",
		"strata:group/g?posting",
		"strata:group/g?routing",
		"strata:group/g?replication",
		"strata:group/g?multicast&posting",
		"strata:group/g?multicast&publisher=" + testKeyB64,
		"strata:group/g?multicast&publisher=" + base64.RawURLEncoding.EncodeToString(other),
		"strata:group/g?password=a",
		"strata:group/g?password=b",
		"strata:group/g?posting&postingpassword=a",
		"strata:group/g?password=a&posting",
		"strata:group/g?password=a&posting&postingpassword=a",
	}
	seen := map[[32]byte]string{}
	for _, s := range specs {
		id := mustParse(t, s).ID()
		if prev, ok := seen[id]; ok {
			t.Errorf("%q and %q share ID %x", prev, s, id)
		}
		seen[id] = s
	}
}

func TestSpecifierIDHidesPasswords(t *testing.T) {
	sp := mustParse(t, "strata:group/g?password=hunter2&posting&postingpassword=swordfish")
	ids := sp.IDString()
	if strings.Contains(ids, "hunter2") || strings.Contains(ids, "swordfish") {
		t.Errorf("IDString reveals a password: %q", ids)
	}
	if !strings.Contains(ids, "password-sha256=") || !strings.Contains(ids, "postingpassword-sha256=") {
		t.Errorf("IDString %q lacks password hashes", ids)
	}
	// Equal passwords in the two roles hash differently.
	same := mustParse(t, "strata:group/g?password=x&posting&postingpassword=x").IDString()
	i, j := strings.Index(same, "password-sha256="), strings.Index(same, "postingpassword-sha256=")
	if same[i+16:i+16+64] == same[j+23:j+23+64] {
		t.Errorf("same hash for both roles: %q", same)
	}
	// A known vector pins the ID derivation, so it cannot change silently.
	news := mustParse(t, "strata:group/news")
	if got := news.IDString(); got != "strata:group/news" {
		t.Errorf("IDString = %q", got)
	}
	// SHA-256 of "strata group id v1\x00strata:group/news".
	id := news.ID()
	if got := hex.EncodeToString(id[:]); got != "e1bbd720ae44d21372a5daf3ecc0c5b5f36b48646d4d4fd8a210500b99165000" {
		t.Errorf("ID = %s", got)
	}
}

func TestParseSpecifierMalformed(t *testing.T) {
	long := "strata:group/" + strings.Repeat("a", 256)
	tests := []struct {
		in, wantMsg string
	}{
		{"", "must start with"},
		{"strata:news", "must start with"},
		{"STRATA:group/news", "must start with"},
		{"strata:group/", "name: empty"},
		{"strata:group/?multicast", "name: empty"},
		{long, "name: 256 bytes"},
		{"strata:group/" + strings.Repeat("a", 5000), "at most 4096"},
		{"strata:group/a b", "must be percent-encoded"},
		{"strata:group/a/b", "must be percent-encoded"},
		{"strata:group/a#b", "must be percent-encoded"},
		{"strata:group/a%2", "two hex digits"},
		{"strata:group/a%zz", "two hex digits"},
		{"strata:group/a%ff", "not valid UTF-8"},
		{"strata:group/a%0A", "control character"},
		{"strata:group/a?", "'?' without options"},
		{"strata:group/a?multicast&", "option 2 is empty"},
		{"strata:group/a?&multicast", "option 1 is empty"},
		{"strata:group/a?=x", "option 1 is empty"},
		{"strata:group/a?Multicast", `unknown option "Multicast"`},
		{"strata:group/a?fast", `unknown option "fast"`},
		{"strata:group/a?multicast&multicast", `"multicast" appears twice`},
		{"strata:group/a?multicast=1", `"multicast" takes no value`},
		{"strata:group/a?posting=", `"posting" takes no value`},
		{"strata:group/a?password", `"password" needs a value`},
		{"strata:group/a?password=", `"password" needs a value`},
		{"strata:group/a?password=a%zz", `"password"`},
		{"strata:group/a?password=a&password=b", "appears twice"},
		{"strata:group/a?postingpassword=x", `"postingpassword" needs option "posting"`},
		{"strata:group/a?publisher=" + testKeyB64, `"publisher" needs option "multicast"`},
		{"strata:group/a?multicast&publisher", `"publisher" needs a key`},
		{"strata:group/a?multicast&publisher=" + testKeyB64[:42], "43 characters"},
		{"strata:group/a?multicast&publisher=" + testKeyB64 + "=", "43 characters"},
		{"strata:group/a?multicast&publisher=" + base64.StdEncoding.EncodeToString(testKey), "43 characters"},
		{"strata:group/a?password=" + strings.Repeat("p", 256), "256 bytes"},
	}
	for _, tt := range tests {
		_, err := ParseSpecifier(tt.in)
		if err == nil {
			t.Errorf("%.60q: accepted", tt.in)
			continue
		}
		if !errors.Is(err, ErrMalformedSpecifier) || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("%.60q: error %q, want one containing %q", tt.in, err, tt.wantMsg)
		}
	}
	// Errors about passwords do not quote them.
	_, err := ParseSpecifier("strata:group/a?password=secret word")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("password error %v", err)
	}
}

func TestSpecifierValidate(t *testing.T) {
	tests := []struct {
		sp Specifier
		ok bool
	}{
		{Specifier{Name: "x"}, true},
		{Specifier{}, false},
		{Specifier{Name: "x", Multicast: true, PublisherKey: testKey[:31]}, false},
		{Specifier{Name: "x", Posting: true, PostingPassword: "a\x00b"}, false},
		{Specifier{Name: "x", Multicast: true, PublisherKey: testKey, Password: "pw"}, true},
	}
	for _, tt := range tests {
		err := tt.sp.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tt.sp, err, tt.ok)
		}
		if err == nil {
			back := mustParse(t, tt.sp.String())
			if !equalSpecifiers(back, tt.sp) {
				t.Errorf("%+v did not survive String and ParseSpecifier: %+v", tt.sp, back)
			}
		}
	}
}

func mustParse(t *testing.T, s string) Specifier {
	t.Helper()
	sp, err := ParseSpecifier(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return sp
}

func FuzzParseSpecifier(f *testing.F) {
	f.Add("strata:group/news")
	f.Add("strata:group/caf%C3%A9?routing&posting&postingpassword=p%26q&password=x")
	f.Add("strata:group/live?publisher=" + testKeyB64 + "&multicast&replication")
	f.Add("strata:group/a?")
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpecifier(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedSpecifier) {
				t.Fatalf("error %v does not wrap ErrMalformedSpecifier", err)
			}
			return
		}
		c := sp.String()
		again, err := ParseSpecifier(c)
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", c, err)
		}
		if !equalSpecifiers(sp, again) || again.String() != c || again.ID() != sp.ID() {
			t.Fatalf("%q -> %q is not stable", s, c)
		}
	})
}

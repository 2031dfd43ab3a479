package flash_test

import (
	"fmt"

	"github.com/strata-net/strata/node/internal/flash"
)

// Two peers key a session and exchange one protected packet.
func Example() {
	alice, _ := flash.NewIdentity(nil, false, "")
	bob, _ := flash.NewIdentity(nil, false, "")

	// Alice got Bob's certificate in an RHello and checks it is whom she asked for.
	bobCert, _ := flash.DecodeCert(bob.Cert())
	fmt.Println("selected:", bobCert.IsSelectedBy(flash.EPDForPeerID(bob.PeerID())))

	in, _ := alice.NewInitiator(nil, bobCert, flash.Policy{})
	// IIKeying carries alice.Cert() and in.SKIC(); Bob answers in RIKeying.
	aliceCert, _ := flash.DecodeCert(alice.Cert())
	skrc, bobCrypto, _ := bob.Respond(nil, aliceCert, in.SKIC(), flash.Policy{})
	aliceCrypto, _ := in.Finish(skrc)

	sealed := aliceCrypto.Seal(nil, []byte("\x89hello"))
	opened, err := bobCrypto.Open(nil, sealed)
	fmt.Printf("%q %v\n", opened[:6], err)
	// Output:
	// selected: true
	// "\x89hello" <nil>
}

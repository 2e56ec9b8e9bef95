package relay

import (
	"os"
	"testing"
)

func TestDomainKey(t *testing.T) {
	for in, want := range map[string]string{
		"example.org":            "example.org",
		"Example.ORG.":           "example.org",
		"bücher.example":         "xn--bcher-kva.example",
		"BÜCHER.Example.":        "xn--bcher-kva.example",
		"xn--bcher-kva.example":  "xn--bcher-kva.example",
		"XN--BCHER-KVA.EXAMPLE.": "xn--bcher-kva.example",
		"bü-.example":            "",
		"\u0301a.example":        "", // a label starting with a combining mark
		"b\xfccher.example":      "",
	} {
		if got := DomainKey(in); got != want {
			t.Errorf("DomainKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRulesIDN: U-labels and A-labels of one domain are the same domain
// in every control file the relay decision reads, whichever form the
// file and the client use.
func TestRulesIDN(t *testing.T) {
	ctl := controlDir(t, map[string]string{
		"me":            "me.example",
		"rcpthosts":     "bücher.example\n.xn--mller-kva.example\n",
		"morercpthosts": "Straße.example\n",
		"relaymailfrom": "@xn--caf-dma.example\nchef@küche.example\n",
		"relaydomains":  ".kiosk.xn--drf-sna.example\n",
	})
	if _, err := Rebuild(ctl); err != nil {
		t.Fatal(err)
	}
	for _, cdbToo := range []bool{false, true} {
		if cdbToo {
			os.Remove(ctl.File("relaymailfrom"))
		}
		r, err := Load(ctl)
		if err != nil {
			t.Fatal(err)
		}
		for d, want := range map[string]bool{
			"bücher.example": true, "xn--bcher-kva.example": true, "BÜCHER.EXAMPLE.": true,
			"a.müller.example": true, "a.xn--mller-kva.example": true, "müller.example": false,
			"straße.example": true, "xn--strae-oqa.example": true, "strasse.example": false,
			"bucher.example": false,
		} {
			if got, err := r.Accepts(d); got != want || err != nil {
				t.Errorf("Accepts(%q) = %v %v", d, got, err)
			}
		}
		for s, want := range map[string]bool{
			"x@café.example": true, "x@xn--caf-dma.example": true, "x@cafe.example": false,
			"chef@küche.example": true, "chef@xn--kche-0ra.example": true, "koch@küche.example": false,
		} {
			a, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if got, err := r.SenderMayRelay(a); got != want || err != nil {
				t.Errorf("cdb %v: SenderMayRelay(%q) = %v %v", cdbToo, s, got, err)
			}
		}
		if ok, _ := r.ClientMayRelay("1.2.3.4", "pc.kiosk.dörf.example"); !ok {
			t.Error("relaydomains: U-label host name not matched against A-labels")
		}
		r.Close()
	}
}

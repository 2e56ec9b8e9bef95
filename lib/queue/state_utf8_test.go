package queue

import (
	"errors"
	"testing"
	"time"

	"omail/lib/envelope"
)

// TestStateUTF8: the U record is derived from the envelope, written only
// when set, read back, and refused anywhere but once before the
// recipients.
func TestStateUTF8(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, c := range []struct {
		env  envelope.Envelope
		want bool
	}{
		{envelope.Envelope{Sender: "a@b.example", Rcpts: []string{"c@d.example"}}, false},
		{envelope.Envelope{Sender: "", Rcpts: []string{"c@xn--bcher-kva.example"}}, false},
		{envelope.Envelope{Sender: "jürgen@b.example", Rcpts: []string{"c@d.example"}}, true},
		{envelope.Envelope{Sender: "a@b.example", Rcpts: []string{"c@d.example", "c@bücher.example"}}, true},
	} {
		st := NewState("1.2.3.4", now, &c.env)
		if st.UTF8 != c.want {
			t.Errorf("%+v: UTF8 %v, want %v", c.env, st.UTF8, c.want)
		}
		st.MessageLen = 42
		again, err := ParseState("1.2.3.4", st.Marshal())
		if err != nil || again.UTF8 != c.want || again.MessageLen != 42 {
			t.Errorf("%+v: round trip %+v %v", c.env, again, err)
		}
	}
	good := "V1\x00Q1\x00Fa@b\x00L9\x00U\x00RT 0 0 c@d\x00.\x00"
	if st, err := ParseState("x", []byte(good)); err != nil || !st.UTF8 {
		t.Errorf("%q: %+v %v", good, st, err)
	}
	for _, bad := range []string{
		"V1\x00Q1\x00Fa@b\x00U\x00U\x00RT 0 0 c@d\x00.\x00",  // twice
		"V1\x00Q1\x00Fa@b\x00RT 0 0 c@d\x00U\x00.\x00",       // after a recipient
		"V1\x00Q1\x00Fa@b\x00U1\x00RT 0 0 c@d\x00.\x00",      // with a value
		"V1\x00Q1\x00Fa@b\x00U\x00L9\x00RT 0 0 c@d\x00.\x00", // L must come first
	} {
		if _, err := ParseState("x", []byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: %v, want ErrCorrupt", bad, err)
		}
	}
}

package clock

import (
	"testing"
	"time"
)

func TestNow(t *testing.T) {
	fixed := time.Unix(1e9, 0)
	if got := Now(func() time.Time { return fixed }); !got.Equal(fixed) {
		t.Fatalf("Now(fixed) = %v, want %v", got, fixed)
	}
	before := time.Now()
	if got := Now(nil); got.Before(before) {
		t.Fatalf("Now(nil) = %v, before %v", got, before)
	}
}

// Package clock is the one place a component's injectable time source
// falls back to the real clock: tests set a Now field, production
// leaves it nil.
package clock

import "time"

// Now returns f(), or time.Now() when f is nil.
func Now(f func() time.Time) time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}

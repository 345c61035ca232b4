package output

import (
	"strconv"
	"time"
)

// Age renders how long ago something happened, as "12s ago", "5m ago",
// "3h ago", "2d ago". Younger than a second is "just now"; a zero or nil
// time is "never".
func Age(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t)
	if d < 0 {
		return "in " + Duration(-d) // clock skew between host and database
	}
	if d < time.Second {
		return "just now"
	}
	return string(append(AppendDuration(make([]byte, 0, 16), d), " ago"...))
}

// Duration renders d compactly with at most two units: 45s, 5m12s, 3h4m, 2d3h.
func Duration(d time.Duration) string {
	return string(AppendDuration(make([]byte, 0, 8), d))
}

// AppendDuration appends Duration(d) to b, without allocating: listings
// render an age for every row.
func AppendDuration(b []byte, d time.Duration) []byte {
	two := func(b []byte, big int, bigUnit byte, small int, smallUnit byte) []byte {
		b = append(strconv.AppendInt(b, int64(big), 10), bigUnit)
		if small != 0 {
			b = append(strconv.AppendInt(b, int64(small), 10), smallUnit)
		}
		return b
	}
	switch {
	case d < time.Second:
		return append(strconv.AppendInt(b, d.Milliseconds(), 10), "ms"...)
	case d < time.Minute:
		return append(strconv.AppendInt(b, int64(d/time.Second), 10), 's')
	case d < time.Hour:
		return two(b, int(d/time.Minute), 'm', int(d/time.Second)%60, 's')
	case d < 48*time.Hour:
		return two(b, int(d/time.Hour), 'h', int(d/time.Minute)%60, 'm')
	default:
		return two(b, int(d/time.Hour)/24, 'd', int(d/time.Hour)%24, 'h')
	}
}

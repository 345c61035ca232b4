package supervise

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Output limits of a sensor process's stdout and stderr in the worker's log.
const (
	// MaxLogLine truncates a longer line (the rest is dropped, marked "…").
	MaxLogLine = 4096
	// LogLinesPerSecond and LogBurst rate-limit one sensor's lines; lines
	// over the limit are counted and reported, not logged.
	LogLinesPerSecond = 50
	LogBurst          = 200
	// StderrTail is how much of the end of stderr is kept for the reason of
	// a quarantine.
	StderrTail = 2048
)

// outputPump logs a process's lines with the sensor's ref, bounded in
// length and rate, and keeps the tail of stderr.
type outputPump struct {
	log    *slog.Logger
	bucket *bucket

	mu      sync.Mutex
	dropped int
	tail    []byte
}

func newOutputPump(log *slog.Logger) *outputPump {
	return &outputPump{log: log, bucket: newBucket(LogLinesPerSecond, LogBurst)}
}

// pump reads r line by line until EOF, then closes r when it can. A line
// longer than MaxLogLine is cut.
func (o *outputPump) pump(r io.Reader, stream string) {
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	br := bufio.NewReaderSize(r, MaxLogLine)
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			text := string(line)
			if isPrefix {
				text += "…"
				// Skip the rest of the long line.
				for isPrefix && err == nil {
					_, isPrefix, err = br.ReadLine()
				}
			}
			o.emit(stream, text)
		}
		if err != nil {
			return
		}
	}
}

func (o *outputPump) emit(stream, text string) {
	o.mu.Lock()
	if stream == "stderr" {
		o.tail = append(o.tail, text...)
		o.tail = append(o.tail, '\n')
		if len(o.tail) > StderrTail {
			o.tail = append([]byte(nil), o.tail[len(o.tail)-StderrTail:]...)
		}
	}
	if !o.bucket.take(time.Now()) {
		o.dropped++
		o.mu.Unlock()
		return
	}
	dropped := o.dropped
	o.dropped = 0
	o.mu.Unlock()
	if dropped > 0 {
		o.log.Warn("sensor output over the rate limit; lines dropped", "dropped", dropped, "limit_per_second", LogLinesPerSecond)
	}
	level := slog.LevelInfo
	if stream == "stderr" {
		level = slog.LevelWarn
	}
	o.log.Log(context.Background(), level, text, "stream", stream)
}

// stderrTail returns the last bytes of stderr seen so far.
func (o *outputPump) stderrTail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.tail)
}

// flushDropped reports lines dropped since the last logged line.
func (o *outputPump) flushDropped() {
	o.mu.Lock()
	dropped := o.dropped
	o.dropped = 0
	o.mu.Unlock()
	if dropped > 0 {
		o.log.Warn("sensor output over the rate limit; lines dropped", "dropped", dropped, "limit_per_second", LogLinesPerSecond)
	}
}

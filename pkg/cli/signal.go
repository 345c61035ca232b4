package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/attune-automation/attunectl/pkg/proc"
)

// sameRequest is how long after the first SIGINT or SIGTERM another one
// is the same request to stop, not a second one: `timeout -s INT`, a
// supervisor and a terminal may each deliver the signal to the process and
// to its process group at once.
const sameRequest = 250 * time.Millisecond

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM,
// so that every command stops gracefully (a sensor deregisters, a watch
// ends). Signals arriving within sameRequest of the first are part of it; a
// signal after that exits at once with status 130.
//
// As PID 1 (a container's init, e.g. the Kubernetes manifest of `attunectl help service`)
// attunectl also reaps the orphaned processes the kernel hands it, until
// the returned cancel function is called.
func SignalContext(parent context.Context, stderr io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	if os.Getpid() == 1 {
		reapCtx, stopReaping := context.WithCancel(context.Background())
		go func() {
			<-done
			stopReaping()
		}()
		go proc.ReapOrphans(reapCtx)
	}
	go func() {
		var first time.Time
		select {
		case <-ch:
			first = time.Now()
			cancel()
		case <-ctx.Done():
			return
		case <-done:
			return
		}
		for {
			select {
			case <-ch:
			case <-done:
				return
			}
			if time.Since(first) < sameRequest {
				continue
			}
			fmt.Fprintln(stderr, "attunectl: second signal, exiting now")
			os.Exit(ExitInterrupt)
		}
	}()
	var once sync.Once
	return ctx, func() {
		signal.Stop(ch)
		cancel()
		once.Do(func() { close(done) })
	}
}

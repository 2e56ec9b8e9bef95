package qmanager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"omail/lib/control"
	"omail/lib/envelope"
	"omail/lib/outcome"
	"omail/lib/queue"
)

// fillQueue writes n messages straight into info/ and mess/, deferred
// until far in the future, the way a long-running queue looks. It skips
// fsync: this is a benchmark's setup, not a queue anyone relies on.
func fillQueue(b *testing.B, q *queue.Queue, n int, next int64) {
	b.Helper()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("1700000000.%09d.1.%d", i, i)
		st := &queue.State{ID: id, Queued: 1700000000, Sender: "s@x.example",
			Rcpts: []queue.Rcpt{{Addr: fmt.Sprintf("u%d@far.example", i), Status: queue.Todo, Attempts: 3, NextTry: next, LastError: "4.4.1 connection refused"}}}
		if err := os.WriteFile(q.Path(queue.DirMess, id), []byte("Subject: x\n\nbody\n"), 0o640); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(q.Path(queue.DirInfo, id), st.Marshal(), 0o640); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliveryWithBigQueue measures delivering 1,000 new messages
// while 1k, 10k or 100k deferred messages sit in the queue: the
// scheduler must not re-read the queue per message, so the per-message
// cost should not grow with the backlog. Run: make bench, or
// go test -run '^$' -bench DeliveryWithBigQueue ./lib/qmanager/
func BenchmarkDeliveryWithBigQueue(b *testing.B) {
	for _, backlog := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			home := b.TempDir()
			os.MkdirAll(filepath.Join(home, "control"), 0o755)
			os.WriteFile(filepath.Join(home, "control", "me"), []byte("test.example\n"), 0o644)
			q := queue.New(home)
			if err := q.Init(); err != nil {
				b.Fatal(err)
			}
			now := time.Unix(1800000000, 0)
			fillQueue(b, q, backlog, now.Add(3*time.Hour).Unix())
			m := &Manager{Q: q, Ctl: control.New(home), Now: func() time.Time { return now }}
			if err := m.Load(); err != nil {
				b.Fatal(err)
			}
			delivered := make(chan struct{}, 1024)
			m.T.Local = func(ctx context.Context, msgPath, sender, rcpt string) outcome.Result {
				delivered <- struct{}{}
				return outcome.Result{Status: outcome.OK}
			}
			newMail := make(chan struct{}, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			start := time.Now()
			go func() { done <- m.Run(ctx, Signals{New: newMail}) }()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				const batch = 1000
				for j := 0; j < batch; j++ {
					if _, err := q.Enqueue(strings.NewReader("Subject: new\n\nbody\n"), &envelope.Envelope{Sender: "s@x", Rcpts: []string{"new@test.example"}}); err != nil {
						b.Fatal(err)
					}
				}
				newMail <- struct{}{}
				for j := 0; j < batch; j++ {
					<-delivered
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/msg")
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.Logf("backlog %d: daemon start to done %v", backlog, time.Since(start))
		})
	}
}

// cancel_test.go: a Read or Sync stopped by the caller's context returns
// the context's error without making it the backend's sticky error, so the
// next generation on the same backend runs.
package kernels

import (
	"context"
	"errors"
	"testing"
	"time"

	"harmony/engine/gpu/gputest"
)

func TestReadCancelNotSticky(t *testing.T) {
	b := New(gputest.Default(t))
	x := b.FromF32("x", []float32{1, 2, 3, 4, 5}, 5)
	defer b.Free(x)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, stop := context.WithTimeout(context.Background(), time.Nanosecond)
	defer stop()
	<-expired.Done()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		y := b.Scale(x, 2, 1)
		if _, err := b.Read(c.ctx, y); !errors.Is(err, c.want) {
			t.Fatalf("Read with an ended context: %v, want %v", err, c.want)
		}
		if err := b.Sync(c.ctx); !errors.Is(err, c.want) {
			t.Fatalf("Sync with an ended context: %v, want %v", err, c.want)
		}
		if err := b.Err(); err != nil {
			t.Fatalf("the context's end became the backend's error: %v", err)
		}
		// The cancelled step's tensors are freed as usual, and the next
		// step computes.
		b.Free(y)
		z := b.Scale(x, 2, 1)
		got, err := b.Read(context.Background(), z)
		b.Free(z)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if want := 2*float32(i+1) + 1; v != want {
				t.Fatalf("after a cancelled Read: [%d] = %v, want %v", i, v, want)
			}
		}
	}
}

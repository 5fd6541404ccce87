package ws

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// A paced sender delivers far more than QueueBytes to a client that reads
// slowly, without the client being closed as a slow consumer.
func TestWaitRoomPacesASender(t *testing.T) {
	const queue, frames, size = 1000, 200, 90
	w, r, _ := pipe(t, Options{QueueBytes: queue})
	done := make(chan bool, 1)
	go func() {
		for i := range frames {
			f := []byte(strconv.Itoa(i%10) + strings.Repeat("x", size-1))
			if !w.WaitRoom(len(f), queue/2, nil) || !w.Send(f) {
				done <- false
				return
			}
			if q := w.Queued(); q > queue {
				t.Errorf("queued %d bytes, over the bound %d", q, queue)
			}
		}
		done <- true
	}()
	for i := range frames {
		expectText(t, r, strconv.Itoa(i%10)+strings.Repeat("x", size-1))
	}
	if !<-done {
		t.Fatal("the paced sender was refused")
	}
	if w.Closing() {
		t.Fatal("the client was closed")
	}
}

func TestWaitRoomEnds(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		w, r, _ := pipe(t, Options{QueueBytes: 100})
		w.Send([]byte("first")) // blocks the writer: nobody reads yet
		for w.Queued() != 0 {
			time.Sleep(time.Millisecond)
		}
		w.Send([]byte(strings.Repeat("q", 60)))
		cancel := make(chan struct{})
		close(cancel)
		if w.WaitRoom(60, 50, cancel) {
			t.Fatal("WaitRoom returned true with a full queue and a closed cancel")
		}
		expectText(t, r, "first")
	})
	t.Run("closing connection", func(t *testing.T) {
		w, _, _ := pipe(t, Options{})
		w.Close(4200, "bye")
		if w.WaitRoom(1, 100, nil) {
			t.Fatal("WaitRoom returned true on a closing connection")
		}
	})
	t.Run("empty queue takes a large frame", func(t *testing.T) {
		w, _, _ := pipe(t, Options{QueueBytes: 10})
		if !w.WaitRoom(1000, 5, nil) {
			t.Fatal("WaitRoom refused a frame larger than the budget on an empty queue")
		}
	})
}

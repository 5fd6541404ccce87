package ws

// Pacing: a sender with many frames to deliver (a replay of hundreds of
// events) must not push them into the queue at once, where they would go
// over QueueBytes and close the client as a slow consumer. It waits for
// room instead, as the writer drains the queue.

// QueueLimit is the bound of the send queue in bytes (Options.QueueBytes).
func (w *Writer) QueueLimit() int { return w.opt.QueueBytes }

// Queued returns the bytes waiting in the send queue.
func (w *Writer) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// WaitRoom waits until a frame of n bytes fits in the queue under budget
// bytes, or the queue is empty (a frame larger than the budget still goes
// through an empty queue). It reports false when the connection no longer
// takes frames or cancel is closed. Other senders may fill the room before
// the caller uses it: the budget is a pace, not a reservation, and should
// leave the rest of QueueBytes to them.
func (w *Writer) WaitRoom(n, budget int, cancel <-chan struct{}) bool {
	for {
		w.mu.Lock()
		if w.state != stateOpen {
			w.mu.Unlock()
			return false
		}
		if w.queued == 0 || w.queued+n+2 <= budget {
			w.mu.Unlock()
			return true
		}
		if w.drained == nil {
			w.drained = make(chan struct{})
		}
		drained := w.drained
		w.mu.Unlock()
		select {
		case <-drained:
		case <-w.done:
			return false
		case <-cancel:
			return false
		}
	}
}

// signalDrainedLocked wakes the senders waiting in WaitRoom: the writer has
// just taken the queue. w.mu is held.
func (w *Writer) signalDrainedLocked() {
	if w.drained != nil {
		close(w.drained)
		w.drained = nil
	}
}

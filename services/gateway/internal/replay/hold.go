package replay

// Hold keeps what a subscription cannot send yet, because its first frame
// is not out (a presence channel waiting for its members, a stream
// subscription reading history), within a budget of bytes. A client whose
// held frames pass what its send queue may hold could not have kept up with
// them either: the caller closes it as a slow consumer, as the writer would.
// Hold does no locking: its owner guards it.
type Hold[T any] struct {
	items []T
	bytes int
}

// Add holds it, counted as n bytes. It reports false, and drops everything
// held, when that takes the hold over limit.
func (h *Hold[T]) Add(it T, n, limit int) bool {
	h.items = append(h.items, it)
	h.bytes += n
	if h.bytes > limit {
		h.Drop()
		return false
	}
	return true
}

// Take returns what is held and empties the hold.
func (h *Hold[T]) Take() []T {
	items := h.items
	h.items, h.bytes = nil, 0
	return items
}

// Drop discards what is held.
func (h *Hold[T]) Drop() {
	clear(h.items)
	h.items, h.bytes = nil, 0
}

// Len is the number of items held.
func (h *Hold[T]) Len() int { return len(h.items) }

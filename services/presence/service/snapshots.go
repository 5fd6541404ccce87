package service

// Gateway snapshots: held part by part and applied whole.

import (
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go/jetstream"
)

// heldSnapshot is a gateway's snapshot while its parts arrive.
type heldSnapshot struct {
	id    string              // the snapshot's id; a new one supersedes it
	subs  []presence.Sub      // the subscriptions of the parts so far
	users []presence.SignedIn // the signed-in users of the parts so far
	parts []ackable           // acknowledged once the snapshot is applied
}

// snapshotPart collects the parts of a gateway's snapshot, and applies it
// whole with the last one. Parts are acknowledged only then, so that a
// restart replays the snapshot from its first part.
func (t *term) snapshotPart(seq uint64, m jetstream.Msg, op *presence.Op) error {
	h := t.snapshots[op.Gateway]
	if h != nil && h.id != op.SnapshotID {
		// A newer snapshot supersedes an unfinished one.
		t.discardHeld(op.Gateway)
		h = nil
	}
	if h == nil {
		if op.Part != 0 {
			// The start of this snapshot was lost: the gateway sends
			// another when it sees its publish fail.
			t.acks = append(t.acks, ackable{seq, m})
			return nil
		}
		h = &heldSnapshot{id: op.SnapshotID}
		t.snapshots[op.Gateway] = h
	}
	h.subs = append(h.subs, op.Subs...)
	h.users = append(h.users, op.Users...)
	h.parts = append(h.parts, ackable{seq, m})
	if !op.Last {
		return nil
	}
	delete(t.snapshots, op.Gateway)
	t.acks = append(t.acks, h.parts...)
	whole := *op
	whole.Subs, whole.Users = h.subs, h.users
	return t.apply(seq, &whole)
}

// discardHeld drops a gateway's unfinished snapshot; its parts are
// acknowledged, as a newer snapshot or the gateway's removal replaces it.
func (t *term) discardHeld(gw string) {
	if h := t.snapshots[gw]; h != nil {
		t.acks = append(t.acks, h.parts...)
		delete(t.snapshots, gw)
	}
}

// isHeld reports whether seq is a part of an unfinished snapshot.
func (t *term) isHeld(seq uint64) bool {
	for _, h := range t.snapshots {
		for _, a := range h.parts {
			if a.seq == seq {
				return true
			}
		}
	}
	return false
}

package cluster

import (
	"slices"
	"testing"
	"time"
)

// writerKernel is b's kernel waiting to write region w while it is out of
// sync: as dm-raid1's worker does, it asks IS_REMOTE_RECOVERING, and while
// the answer is 1 it runs a recovery pass (GET_RESYNC_WORK, the copy,
// SET_REGION_SYNC) and asks again after a short delay (delayed_wake). It
// returns once the write may go, with the regions b's kernel recovered;
// it fails the test if that takes longer than within.
func writerKernel(t *testing.T, b *Log, w uint64, within time.Duration) []uint64 {
	t.Helper()
	var recovered []uint64
	for deadline := time.Now().Add(within); ; {
		rec, _, err := b.IsRemoteRecovering(w)
		if err != nil {
			t.Fatal(err)
		}
		if !rec {
			return recovered
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("the write to region %d still waits after %v (b recovered %v, grants %v)", w, within, recovered, b.Info().Grants)
		}
		if r, ok, err := b.GetResyncWork(); err != nil {
			t.Fatal(err)
		} else if ok {
			if err := b.SetRegionSync(r, true); err != nil {
				t.Fatal(err)
			}
			recovered = append(recovered, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGiveBackNotStarted: a holds a batch of regions for recovery and its
// kernel recovers the first one; b's kernel wants to write another region
// of the batch, which a's kernel was not handed. Before the give-back,
// b's write waited (IS_REMOTE_RECOVERING 1) until a's kernel reached that
// region: here never, a's kernel being busy with its first one. Now a
// gives it back, b recovers it next and its write goes, within a handful
// of messages; a's kernel is never handed it again.
func TestGiveBackNotStarted(t *testing.T) {
	coreAndDisk(t, func(t *testing.T, args string) {
		a, b, _ := pairOn(t, "65536 "+args) // 64 regions
		first := mustWork(t, a)
		ga := a.Info().Grants[a.Info().Me]
		if len(ga) < 8 {
			t.Fatalf("a holds %v; want a batch", ga)
		}
		w := ga[len(ga)-1] // the batch's last region: the longest wait
		waitFor(t, "a's grant known to b", func() bool { return held(b, w) })
		sent := a.Info().Sent + b.Info().Sent
		got := writerKernel(t, b, w, 5*time.Second)
		msgs := a.Info().Sent + b.Info().Sent - sent
		t.Logf("b's write to region %d went after %d messages; b recovered %v", w, msgs, got)
		// b's kernel may take a region of its own before the RELEASE
		// arrives (it recovers what it is handed), then w.
		if !slices.Contains(got, w) || len(got) > 3 {
			t.Fatalf("b's kernel recovered %v; want region %d within its first 3", got, w)
		}
		// WANT, RELEASE, PROPOSE, VOTE, and a SYNCS or two.
		if msgs > 8 {
			t.Fatalf("%d messages before the write went; want at most 8", msgs)
		}
		if n := a.Info().GivenBack; n != 1 {
			t.Fatalf("a gave back %d regions; want 1", n)
		}
		// The writer's side: b sent the WANT and took the region back;
		// dlogd's state dump shows both (GroupCounters).
		if bi, g := b.Info(), b.GroupCounters(); bi.TakenBack != 1 || bi.WantsSent < 1 || g["taken_back"] != 1 || g["wants_sent"] != bi.WantsSent || a.GroupCounters()["given_back"] != 1 {
			t.Fatalf("b: taken back %d, wants sent %d, counters %v; a's counters %v; want 1 taken back after a WANT", bi.TakenBack, bi.WantsSent, g, a.GroupCounters())
		}
		waitFor(t, "b's recovery known to a", func() bool { return replicatedInSync(a, w) })
		if slices.Contains(a.Info().Grants[a.Info().Me], w) {
			t.Fatalf("a still holds region %d", w)
		}
		// a's kernel goes on with its batch and is never handed w.
		if got := recoverGrant(t, a, first); slices.Contains(got, w) {
			t.Fatalf("a's kernel handed region %d after a gave it back", w)
		}
	})
}

// recoverGrant is l's kernel reporting first, which it was handed, in sync,
// then recovering every region GET_RESYNC_WORK hands it until the log is in
// sync or it answers "no work": the regions it was handed after first.
func recoverGrant(t *testing.T, l *Log, first uint64) []uint64 {
	t.Helper()
	var got []uint64
	for r := first; ; got = append(got, r) {
		if err := l.SetRegionSync(r, true); err != nil {
			t.Fatal(err)
		}
		if l.SyncCount() == l.n {
			return got
		}
		next, ok, err := l.GetResyncWork()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		r = next
	}
}

// TestGiveBackStartedKept: a region a's kernel was handed (it may be
// copying it) is never given back: b's write to it waits for a's report,
// while a region of the same batch a's kernel was not handed is given back
// to b's other write.
func TestGiveBackStartedKept(t *testing.T) {
	coreAndDisk(t, func(t *testing.T, args string) {
		a, b, _ := pairOn(t, "65536 "+args)
		first := mustWork(t, a)
		ga := a.Info().Grants[a.Info().Me]
		other := ga[len(ga)-1]
		waitFor(t, "a's grant known to b", func() bool { return held(b, first, other) })
		// b's kernel asks about both; only the one a's kernel was not
		// handed comes back.
		for _, r := range []uint64{first, other} {
			if rec, _, _ := b.IsRemoteRecovering(r); !rec {
				t.Fatalf("IS_REMOTE_RECOVERING(%d) = 0 on b while a holds it", r)
			}
		}
		waitFor(t, "the region a's kernel was not handed given back", func() bool { return !slices.Contains(b.Info().Grants[a.Info().Me], other) })
		time.Sleep(200 * time.Millisecond) // any RELEASE of first would be delivered by now
		if !slices.Contains(a.Info().Grants[a.Info().Me], first) || !slices.Contains(b.Info().Grants[a.Info().Me], first) {
			t.Fatalf("region %d, which a's kernel recovers, is no longer a's (grants %v)", first, b.Info().Grants)
		}
		if n := a.Info().GivenBack; n != 1 {
			t.Fatalf("a gave back %d regions; want 1", n)
		}
		for range 3 {
			if rec, _, _ := b.IsRemoteRecovering(first); !rec {
				t.Fatalf("IS_REMOTE_RECOVERING(%d) = 0 on b while a's kernel recovers it", first)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := a.SetRegionSync(first, true); err != nil {
			t.Fatal(err)
		}
		// b's kernel waits for it: the report goes now, not with the
		// next batch of reports (reportDelay later).
		a.mu.Lock()
		queued := slices.Contains(a.reports, first)
		a.mu.Unlock()
		if queued {
			t.Fatalf("the report of %d, which b's kernel waits to write, was queued for the next batch", first)
		}
		waitFor(t, "a's report of the started region delivered to b", func() bool {
			rec, _, _ := b.IsRemoteRecovering(first)
			return !rec
		})
	})
}

// TestGiveBackProposed: b's kernel wants a region of a's proposal while
// the vote is open (b voted for it, c has not yet); a gives it back as
// soon as it is granted, and b's write goes.
func TestGiveBackProposed(t *testing.T) {
	net := NewFakeNet(3)
	a, b, c := threeNodes(t, net, ctr(t, "65536 clustered-core 1024"), nil)
	t.Cleanup(func() { a.Close(); b.Close(); c.Close() })
	net.Hold(3) // c sees no PROPOSE: its vote waits
	go a.GetResyncWork()
	var w uint64
	waitFor(t, "a's proposal known to b", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		p := b.st.pending[a.me]
		if p == nil {
			return false
		}
		w = p.regions[len(p.regions)-1]
		return true
	})
	if rec, _, _ := b.IsRemoteRecovering(w); !rec {
		t.Fatalf("IS_REMOTE_RECOVERING(%d) = 0 on b while a proposed it", w)
	}
	time.Sleep(100 * time.Millisecond) // b's WANT delivered to a before c's vote
	if !held(a, w) && a.Info().GivenBack != 0 {
		t.Fatal("the proposal ended before c voted")
	}
	net.Release()
	waitFor(t, "region given back at its grant", func() bool { return a.Info().GivenBack == 1 })
	writerKernel(t, b, w, 5*time.Second)
	if slices.Contains(a.Info().Grants[a.Info().Me], w) {
		t.Fatalf("a still holds region %d", w)
	}
}

// TestGiveBackNotWhileUnfenced: a holds a batch; c's member departs
// without leaving (its node unfenced), so nothing may be handed out by a
// proposal. b's kernel wants a region of a's batch that a's kernel was
// not handed: a must not give it back (nobody could take it until c is
// fenced), and a's kernel recovers it with the rest of its batch, after
// which b's write goes.
func TestGiveBackNotWhileUnfenced(t *testing.T) {
	net := NewFakeNet(1)
	a, b, c := threeNodes(t, net, ctr(t, "65536 clustered-core 1024"), nil)
	t.Cleanup(func() { a.Close(); b.Close() })
	first := mustWork(t, a)
	ga := a.Info().Grants[a.Info().Me]
	w := ga[len(ga)-1]
	waitFor(t, "a's grant known to b", func() bool { return held(b, w) })
	net.KillProcesses(3)
	c.crash()
	waitFor(t, "c to leave", func() bool { return len(a.Info().Members) == 2 && len(b.Info().Members) == 2 })
	notWanted(t, a, b, w, "c's node is unfenced")
	if !slices.Contains(b.Info().Grants[a.Info().Me], w) {
		t.Fatalf("region %d is no longer a's on b (grants %v)", w, b.Info().Grants)
	}
	// a's kernel recovers its whole batch, w included.
	if got := recoverGrant(t, a, first); !slices.Contains(got, w) {
		t.Fatalf("a's kernel was never handed region %d", w)
	}
	waitFor(t, "b's write to go", func() bool {
		rec, _, _ := b.IsRemoteRecovering(w)
		return !rec
	})
}

// notWanted checks that b, whose kernel waits to write w held by a, sends
// no WANT of it (why: b could not take it), and that a WANT from b anyway
// (say, sent before the state that forbids it was applied) is not given
// back either: every member applies it alike.
func notWanted(t *testing.T, a, b *Log, w uint64, why string) {
	t.Helper()
	for range 4 {
		if rec, _, _ := b.IsRemoteRecovering(w); !rec {
			t.Fatalf("IS_REMOTE_RECOVERING(%d) = 0 on b while a holds it", w)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.mu.Lock()
	_, wanted := b.wantSent[w]
	b.send(func(seq uint64) []byte { return b.codec.want(seq, w) })
	b.mu.Unlock()
	if wanted {
		t.Fatalf("b sent a WANT of region %d while %s; want none", w, why)
	}
	time.Sleep(200 * time.Millisecond)
	if n := a.Info().GivenBack; n != 0 {
		t.Fatalf("a gave back %d regions while %s; want 0", n, why)
	}
}

// TestGiveBackNotWhenFull: b's grant is full (maxBatch regions), so a
// region given back to it could not be proposed by b, nor handed out
// again by a. b sends no WANT, and a WANT from b anyway is not given back;
// once b's kernel reported one of its regions, b's next WANT is, and b's
// write goes.
func TestGiveBackNotWhenFull(t *testing.T) {
	a, b, _ := pairOn(t, "1048576 clustered-core 1024") // 1024 regions
	mustWork(t, a)
	ga := a.Info().Grants[a.Info().Me]
	w := ga[len(ga)-1]
	bfirst := mustWork(t, b)
	waitFor(t, "both grants known to both", func() bool {
		return held(b, w) && len(a.Info().Grants[b.Info().Me]) == maxBatch && len(b.Info().Grants[b.Info().Me]) == maxBatch
	})
	notWanted(t, a, b, w, "b's grant is full")
	if err := b.SetRegionSync(bfirst, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's report known to a", func() bool { return len(a.Info().Grants[b.Info().Me]) < maxBatch })
	writerKernel(t, b, w, 5*time.Second)
	if n := a.Info().GivenBack; n != 1 {
		t.Fatalf("a gave back %d regions; want 1", n)
	}
}

// TestGiveBackReportedSentAtOnce: a region a's kernel recovered and
// reported, its report still waiting for company (reportDelay), is
// wanted by b's kernel: the WANT sends a's queued reports at once.
func TestGiveBackReportedSentAtOnce(t *testing.T) {
	a, b, _ := pairOn(t, "65536 clustered-core 1024")
	first := mustWork(t, a)
	waitFor(t, "a's grant known to b", func() bool { return held(b, first) })
	if err := a.SetRegionSync(first, true); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	queued := slices.Contains(a.reports, first)
	a.mu.Unlock()
	if !queued {
		t.Fatal("the report was not queued: the test's premise (a batched report) does not hold")
	}
	a.mu.Lock()
	recv := a.stats.recv
	a.mu.Unlock()
	if rec, _, _ := b.IsRemoteRecovering(first); !rec {
		t.Fatalf("IS_REMOTE_RECOVERING(%d) = 0 on b before a's report", first)
	}
	if b.Info().WantsSent == 0 {
		t.Fatal("b sent no WANT")
	}
	// The WANT is the next message a receives; it is applied in the
	// same step as it is counted.
	waitFor(t, "b's WANT delivered to a", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.stats.recv == recv {
			return false
		}
		if slices.Contains(a.reports, first) {
			t.Fatalf("a's report of %d still queued after b's WANT of it", first)
		}
		return true
	})
}

// TestWantAtVote: b's kernel waits to write region w, which nobody holds;
// a then proposes w. b votes for it and wants it back in the same breath,
// without waiting for its kernel's next IS_REMOTE_RECOVERING, and a,
// whose kernel was handed nothing, gives it back at the grant: b takes it.
func TestWantAtVote(t *testing.T) {
	a, b, _ := pairOn(t, "65536 clustered-core 1024")
	w := uint64(40)
	if rec, _, _ := b.IsRemoteRecovering(w); !rec {
		t.Fatalf("IS_REMOTE_RECOVERING(%d) = 0 on a fresh log", w)
	}
	if n := b.Info().WantsSent; n != 0 {
		t.Fatalf("b sent %d WANTs for a region nobody holds", n)
	}
	a.mu.Lock()
	a.prio = append(a.prio, w) // a proposes w first; no kernel is handed anything
	a.proposeBatch()
	a.mu.Unlock()
	waitFor(t, "b takes back the region it voted to a", func() bool {
		in := b.Info()
		return in.TakenBack == 1 && slices.Contains(in.Grants[in.Me], w)
	})
}

// TestNoWantWhilePresuspended: a presuspended member's kernel recovers
// nothing; a WANT with its vote would take a region (and a batch) away
// from a member that would copy it.
func TestNoWantWhilePresuspended(t *testing.T) {
	a, b, _ := pairOn(t, "65536 clustered-core 1024")
	w := uint64(40)
	if rec, _, _ := b.IsRemoteRecovering(w); !rec {
		t.Fatal("w in sync")
	}
	if err := b.Presuspend(); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.prio = append(a.prio, w)
	a.proposeBatch()
	a.mu.Unlock()
	waitFor(t, "a's grant of w", func() bool { return held(a, w) })
	time.Sleep(300 * time.Millisecond)
	if bi, ai := b.Info(), a.Info(); bi.WantsSent != 0 || ai.GivenBack != 0 {
		t.Fatalf("presuspended b wanted w: a gave back %d, b holds %v", ai.GivenBack, bi.Grants[bi.Me])
	}
}

//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// clusterRun is one node's part of a cluster scenario.
type clusterRun struct {
	s      *S
	c      clusterCfg
	mb     *mailbox
	d      *Dlogd
	name   string // the mirror's dm name (the same on every node)
	uuid   string
	all    []int // every node
	sync   string
	mirror string // /dev/mapper/<name>
}

const (
	clusterSyncTimeout = 150 * time.Second
	clusterWrites      = 240 // per node
)

// startCluster reads this node's place, opens the mailbox, brings up the
// network, corosync and dlogd (dlogdArgs added to its serve options), and
// waits until every node got that far.
func startCluster(s *S, scen string, dlogdArgs ...string) *clusterRun {
	var c clusterCfg
	s.Do("this node's place in the cluster (dlog.node, dlog.nodes, dlog.clog, dlog.victim)", 5*time.Second, func(ctx context.Context) error {
		var err error
		c, err = readClusterCfg()
		return err
	})
	s.Note("node", fmt.Sprintf("node %d of %d, %s", c.node, c.nodes, c.logType))
	cr := &clusterRun{s: s, c: c, name: "vmc", uuid: "LVM-dlogvmc-" + scen}
	cr.mirror = "/dev/mapper/" + cr.name
	for i := 1; i <= c.nodes; i++ {
		cr.all = append(cr.all, i)
	}
	s.Do("shared disks: mailbox, leg A, leg B, log device", 20*time.Second, func(ctx context.Context) error {
		for _, d := range []struct {
			dev  string
			size int64
		}{{mailboxDev, mailboxBytes}, {legADev, clLegBytes}, {legBDev, clLegBytes}, {clogDev, clogBytes}} {
			if err := waitPath(d.dev, 10*time.Second); err != nil {
				return err
			}
			b, err := os.ReadFile("/sys/class/block/" + strings.TrimPrefix(d.dev, "/dev/") + "/size")
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(b)); got != fmt.Sprint(d.size/512) {
				return fmt.Errorf("%s has %s sectors, want %d: the host attached the shared disks in another order", d.dev, got, d.size/512)
			}
		}
		var err error
		cr.mb, err = openMailbox(c.node)
		return err
	})
	s.Defer("close the mailbox", 5*time.Second, func(ctx context.Context) error { cr.mb.Close(); return nil })
	cr.d, _ = clusterUp(s, c, dlogdArgs...)
	cr.barrier(1, cr.all)
	return cr
}

// barrier publishes phase p and waits until every node in nodes reached it.
func (cr *clusterRun) barrier(p int, nodes []int) {
	cr.s.Do(fmt.Sprintf("barrier %d: nodes %v", p, nodes), 4*time.Minute, func(ctx context.Context) error {
		if err := cr.mb.phase(p); err != nil {
			return err
		}
		return cr.mb.wait(ctx, nodes, p)
	})
}

// table is the mirror's table: the same on every node.
func (cr *clusterRun) table() string {
	t, err := tableFor(cr.uuid, cr.c.logType, cr.sync)
	if err != nil {
		cr.s.Fail("log device number", "maj:min of "+clogDev, "error", err.Error())
	}
	return t
}

// tableFor is the table of a mirror over the shared legs whose userspace
// log has uuid, type logType (with the shared log device when it is a disk
// log) and sync ("", "sync" or "nosync").
func tableFor(uuid, logType, sync string) (string, error) {
	return tableForLegs(uuid, logType, sync, legADev, legBDev)
}

// tableForLegs is tableFor over other leg devices (a scenario that stacks
// a device on a shared leg).
func tableForLegs(uuid, logType, sync, legA, legB string) (string, error) {
	args := []string{uuid, logType}
	if logType == "clustered-disk" {
		mm, err := devMajMin(clogDev)
		if err != nil {
			return "", err
		}
		args = append(args, mm)
	}
	args = append(args, fmt.Sprint(clusterRegion))
	if sync != "" {
		args = append(args, sync)
	}
	return fmt.Sprintf("0 %d mirror userspace %d %s 2 %s 0 %s 0", clLegBytes/512, len(args), strings.Join(args, " "), legA, legB), nil
}

// create puts the mirror on this node and registers its removal.
func (cr *clusterRun) create() { cr.createTable(cr.table()) }

// createTable puts the mirror on this node with table t and registers its
// removal.
func (cr *clusterRun) createTable(t string) {
	cr.s.Defer("remove "+cr.name, stepTimeout, func(ctx context.Context) error {
		if ok, err := dmExists(ctx, cr.name); err != nil || !ok {
			return err
		}
		return dmRemove(ctx, cr.name)
	})
	cr.s.Do("dmsetup create "+cr.name+": "+t, time.Minute, func(ctx context.Context) error { return dmCreate(ctx, cr.name, t) })
}

func (cr *clusterRun) remove() {
	cr.s.Do("dmsetup remove "+cr.name, time.Minute, func(ctx context.Context) error { return dmRemove(ctx, cr.name) })
}

// waitFullSync waits for the mirror to report every region in sync and
// records how long it took; it does no I/O to the mirror. When that fails
// and must is set, it records the failure and falls back to what the
// kernel needs today to ask for resync work again (a small read every
// 0.2 s wakes dm-raid1's worker), so the scenario's data oracle still
// runs; the fallback's time is recorded too. It aborts the scenario when
// the fallback does not reach full sync either.
func (cr *clusterRun) waitFullSync(what string, must bool) bool {
	start := time.Now()
	ok := cr.s.Try(what+" (no I/O)", clusterSyncTimeout, func(ctx context.Context) error {
		_, err := waitSync(ctx, cr.name)
		return err
	})
	if ok {
		cr.s.Note(what+": time", secs(time.Since(start)))
		return true
	}
	if !must {
		return false
	}
	start = time.Now()
	if !cr.s.Try("fallback for the data oracle: one 4 KiB read every 0.2 s until in sync", clusterSyncTimeout, func(ctx context.Context) error {
		return nudgeSync(ctx, cr.mirror, cr.name)
	}) {
		panic(abort{})
	}
	cr.s.Note("fallback: time to full sync with reads", secs(time.Since(start)))
	return false
}

// nudgeSync reads 4 KiB of the mirror every 0.2 s until it is in sync.
func nudgeSync(ctx context.Context, dev, name string) error {
	for i := int64(0); ; i++ {
		if _, err := readDirect(dev, (i%(clLegBytes/clusterBlock))*clusterBlock, clusterBlock); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := waitSync(wctx, name)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
	}
}

// healthy checks the mirror's status: both legs A and, for
// clustered-disk, the log device A (a failed log flush shows as D, a
// failed log device as F).
func (cr *clusterRun) healthy(what string) {
	want := "legs AA, log " + cr.c.logType
	if cr.c.logType == "clustered-disk" {
		mm, _ := devMajMin(clogDev)
		want += " " + mm + " A"
	}
	cr.s.Expect(what, want, 30*time.Second, func(ctx context.Context) (string, error) {
		m, err := mirrorStatus(ctx, cr.name)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("legs %s, log %s", m.Health, strings.Join(m.Log, " ")), nil
	})
}

// verifyThrough checks the acknowledged writes of nodes (their counts read
// from the mailbox) on dev.
func (cr *clusterRun) verifyOn(dev, where string, nodes []int) {
	for _, n := range nodes {
		cr.s.Expect(fmt.Sprintf("acknowledged writes of node %d read back %s", n, where), "ok", time.Minute, func(ctx context.Context) (string, error) {
			st, err := cr.mb.read(n)
			if err != nil {
				return "", err
			}
			if n == cr.c.node {
				st.Acked = cr.mb.ackedNow()
			}
			msg, err := checkWrites(dev, cr.c, n, st.Acked)
			if err != nil {
				return "", err
			}
			cr.s.Logf("node %d: %s: %s", cr.c.node, where, msg)
			if strings.Contains(msg, "lost") {
				return msg, nil
			}
			return "ok", nil
		})
	}
}

// verifyLegs is the data oracle once the mirror is gone on every node: the
// legs are identical over the whole device and every acknowledged write
// is on each leg.
func (cr *clusterRun) verifyLegs(nodes []int) {
	cr.s.Expect("legs A and B identical over the whole device", "identical", 2*time.Minute, func(ctx context.Context) (string, error) {
		return compareLegs()
	})
	cr.verifyOn(legADev, "on leg A", nodes)
	cr.verifyOn(legBDev, "on leg B", nodes)
}

// scenClBasic: create on all nodes, initial resync with no I/O at all,
// writes from every node to blocks spread over every region, each node
// reads the others' writes, full sync, remove, legs identical.
func scenClBasic(s *S) {
	cr := startCluster(s, "basic")
	cr.create()
	cr.barrier(2, cr.all)
	cr.waitFullSync(fmt.Sprintf("idle initial resync of %d regions on every node", clLegBytes/512/clusterRegion), true)
	cr.barrier(3, cr.all)
	start := time.Now()
	cr.s.Do(fmt.Sprintf("%d O_DIRECT 4 KiB writes from this node", clusterWrites), 4*time.Minute, func(ctx context.Context) error {
		return writeWorkload(ctx, cr.mb, cr.mirror, cr.c, 0, clusterWrites, nil)
	})
	cr.s.Note("writes: time", secs(time.Since(start)))
	cr.barrier(4, cr.all)
	cr.verifyOn(cr.mirror, "through the mirror on node "+fmt.Sprint(cr.c.node), cr.all)
	cr.waitFullSync("in sync after the writes", true)
	cr.healthy("status after the writes")
	cr.finish(cr.all)
}

// scenClKillNode: the victim's qemu is killed (a power cut) in the middle
// of its writes while the survivors write too; the survivors keep serving,
// resync the victim's regions with no operator action, and the legs end
// identical with every acknowledged write on them.
func scenClKillNode(s *S) { clKill(s, "kill-node", true) }

// scenClThreeNode: three nodes, the initial resync under way; the third
// node dies mid-resync while the other two write each other's regions
// (every region holds blocks of every node).
func scenClThreeNode(s *S) { clKill(s, "three-node", false) }

func clKill(s *S, scen string, nosync bool) {
	cr := startCluster(s, scen)
	if cr.c.victim == 0 {
		s.Fail("victim", "dlog.victim set by the host", "0", scen+" needs a victim")
	}
	if nosync {
		// The legs are fresh zero-filled images, identical already: nosync
		// keeps the initial resync (basic's subject) out of this scenario.
		cr.sync = "nosync"
	}
	cr.create()
	cr.barrier(2, cr.all)
	survivors := cr.others(cr.c.victim)
	if cr.c.node == cr.c.victim {
		s.Do("write until the host kills this guest", 4*time.Minute, func(ctx context.Context) error {
			err := writeWorkload(ctx, cr.mb, cr.mirror, cr.c, 0, 4*clusterWrites, func(seq int) {
				if seq == clusterWrites/3 {
					fmt.Printf("\n%s node %d after %d acknowledged writes\n", killMarker, cr.c.node, seq+1)
				}
			})
			if err != nil {
				return err
			}
			return fmt.Errorf("all %d writes done and this guest is still alive: the host did not kill it at %s", 4*clusterWrites, killMarker)
		})
		return
	}
	start := time.Now()
	cr.s.Do(fmt.Sprintf("%d O_DIRECT 4 KiB writes from this node while node %d dies", clusterWrites, cr.c.victim), 4*time.Minute, func(ctx context.Context) error {
		return writeWorkload(ctx, cr.mb, cr.mirror, cr.c, 0, clusterWrites, nil)
	})
	cr.s.Note("writes: time", secs(time.Since(start)))
	cr.s.Do(fmt.Sprintf("corosync: node %d gone, %d members, quorate", cr.c.victim, len(survivors)), 2*time.Minute, func(ctx context.Context) error {
		return waitMembers(ctx, len(survivors), true)
	})
	// corosync's membership comes first: until this node's dlogd has
	// handled the departure (confirmed the node fenced), the mirror still
	// reads as the victim left it, and the steps below could pass before
	// its regions were ever out of sync.
	cr.s.Value(fmt.Sprintf("dlogd handled node %d's departure (confirmed fenced)", cr.c.victim), 2*time.Minute, func(ctx context.Context) (string, error) {
		return cr.d.WaitLog(ctx, 1, "departed node confirmed fenced: its regions may be resynchronised")
	})
	st, _ := cr.mb.read(cr.c.victim)
	cr.s.Note(fmt.Sprintf("node %d's acknowledged writes before it died", cr.c.victim), fmt.Sprint(st.Acked))
	cr.s.Value("in sync right after the membership change (the victim's marked regions should be out of sync until recovered)", 10*time.Second, func(ctx context.Context) (string, error) {
		m, err := mirrorStatus(ctx, cr.name)
		return m.Ratio(), err
	})
	if !cr.waitFullSync(fmt.Sprintf("survivors resync node %d's regions with no operator action", cr.c.victim), false) {
		// The data oracle below still needs a synced mirror: do what the
		// README asks an operator to do, and say so.
		cr.s.Do("operator action: dmsetup suspend + resume "+cr.name, time.Minute, func(ctx context.Context) error {
			if _, err := dmsetup(ctx, "suspend", cr.name); err != nil {
				return err
			}
			_, err := dmsetup(ctx, "resume", cr.name)
			return err
		})
		cr.waitFullSync("in sync after the operator's suspend + resume", true)
	}
	cr.healthy("status after the resync")
	cr.verifyOn(cr.mirror, "through the mirror on node "+fmt.Sprint(cr.c.node), cr.all)
	cr.finish(survivors)
}

// others is every node but n.
func (cr *clusterRun) others(n int) []int {
	var o []int
	for _, k := range cr.all {
		if k != n {
			o = append(o, k)
		}
	}
	return o
}

// finish removes the mirror on every node in nodes, then the first of
// them checks the legs.
func (cr *clusterRun) finish(nodes []int) {
	cr.barrier(5, nodes)
	cr.remove()
	cr.barrier(6, nodes)
	if cr.c.node == nodes[0] {
		cr.verifyLegs(cr.all)
	}
}

// scenClKillDlogd: only dlogd is killed (SIGKILL) on node 2 while its
// kernel keeps writing, then restarted; both nodes finish their writes,
// reach full sync, and the data oracle holds.
func scenClKillDlogd(s *S) { clRestartDlogd(s, "kill-dlogd", false) }

// scenClReconnect: the kernel's reconnect path on a running cluster log,
// both ways it happens. During the initial resync, while both nodes write:
//
//   - node 2's dlogd is killed and its state directory removed; the new
//     dlogd knows nothing of the log, so the kernel's next request gets
//     -ESRCH and the kernel sends CTR and RESUME again
//     (userspace_do_request), keeping the in_sync_hint it latched. The new
//     member must take over the departed member's marks (its kernel still
//     holds them dirty) and answer IN_SYNC so that no write below that
//     hint goes to one leg.
//   - node 1's dlogd runs with the smallest netlink receive buffer and is
//     stopped (SIGSTOP) for 5 s while 8 dmsetup status calls and the
//     writes send requests: the queue overruns, the kernel's sends fail
//     with -ESRCH, and it sends CTR and RESUME to the log dlogd still
//     runs, which must keep the hint it promised.
//
// The data oracle holds.
func scenClReconnect(s *S) { clRestartDlogd(s, "reconnect", true) }

// clRestartDlogd kills node 2's dlogd after a third of its writes and
// starts it again 5 s later; fresh removes its state directory first and
// keeps the initial resync in the scenario (no nosync), killing dlogd
// after its 10th write, while the resync is under way, so the kernel
// holds a partial hint and the restart happens mid-resync.
func clRestartDlogd(s *S, scen string, fresh bool) {
	var cr *clusterRun
	if fresh {
		// 1 byte: the kernel's minimum (SOCK_MIN_RCVBUF, two requests).
		cr = startCluster(s, scen, "--rcvbuf", "1")
	} else {
		cr = startCluster(s, scen)
	}
	killAt := clusterWrites / 3
	if fresh {
		killAt = 10
	} else {
		cr.sync = "nosync"
	}
	cr.create()
	cr.barrier(2, cr.all)
	const victim = 2
	marker := kmsgMark("cluster " + scen)
	restarted, overran := make(chan error, 1), make(chan error, 1)
	atKill := "unknown"
	what := "killed and restarted 5 s later"
	if fresh {
		what = "killed, its state directory removed, restarted 5 s later"
	}
	start := time.Now()
	cr.s.Do(fmt.Sprintf("%d O_DIRECT 4 KiB writes from this node (node %d's dlogd %s, after %d)", clusterWrites, victim, what, killAt), 5*time.Minute, func(ctx context.Context) error {
		return writeWorkload(ctx, cr.mb, cr.mirror, cr.c, 0, clusterWrites, func(seq int) {
			if fresh && cr.c.node == overrunNode && seq == 3*killAt {
				go func() { overran <- cr.overrun(5 * time.Second) }()
			}
			if cr.c.node != victim || seq != killAt {
				return
			}
			if m, err := mirrorStatus(ctx, cr.name); err == nil {
				atKill = m.Ratio()
			}
			if err := cr.d.Kill9(); err != nil {
				restarted <- err
				return
			}
			go func() {
				time.Sleep(5 * time.Second)
				if fresh {
					if err := os.RemoveAll(cr.d.StateDir()); err != nil {
						restarted <- err
						return
					}
				}
				restarted <- cr.d.Start(context.Background(), 30*time.Second)
			}()
		})
	})
	cr.s.Note("writes: time", secs(time.Since(start)))
	if fresh && cr.c.node == overrunNode {
		cr.await("dlogd stopped 5 s under 8 dmsetup status calls and the writes, then continued", 2*time.Minute, overran)
		cr.s.Value("dlogd saw its receive queue overrun", time.Minute, func(ctx context.Context) (string, error) {
			return cr.d.WaitLog(ctx, 1, "netlink receive queue overrun")
		})
		cr.s.Value("the kernel reconnected to the running log (CTR + RESUME after -ESRCH)", time.Minute, func(ctx context.Context) (string, error) {
			return waitDmesg(ctx, marker, "Reconnected to userspace log server")
		})
	}
	if cr.c.node == victim {
		cr.s.Note("in sync when dlogd was killed", atKill)
		cr.await("dlogd restarted", time.Minute, restarted)
		if fresh {
			cr.s.Value("the kernel reconnected (CTR + RESUME after -ESRCH)", time.Minute, func(ctx context.Context) (string, error) {
				return waitDmesg(ctx, marker, "Reconnected to userspace log server")
			})
			cr.s.Expect("the new dlogd restored no log (it had no state directory)", "0", stepTimeout, func(ctx context.Context) (string, error) {
				lines, err := cr.d.LogSince(2)
				return fmt.Sprint(countLines(lines, "log restored from its state file")), err
			})
			cr.s.Value("the new member took over the departed member's marks", time.Minute, func(ctx context.Context) (string, error) {
				return cr.d.WaitLog(ctx, 2, "rejoined after this node's previous member departed")
			})
		}
	}
	cr.settleAndVerify()
}

// scenClSuspendWrite: during the initial resync, node 1 suspends and
// resumes its mirror three times while both nodes write.
func scenClSuspendWrite(s *S) {
	cr := startCluster(s, "suspend-write")
	cr.create()
	cr.barrier(2, cr.all)
	errc := make(chan error, 1)
	if cr.c.node == 1 {
		go func() {
			for i := 0; i < 3; i++ {
				time.Sleep(4 * time.Second)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := dmsetup(ctx, "suspend", cr.name)
				if err == nil {
					time.Sleep(time.Second)
					_, err = dmsetup(ctx, "resume", cr.name)
				}
				cancel()
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	start := time.Now()
	cr.s.Do(fmt.Sprintf("%d O_DIRECT 4 KiB writes from this node during the resync (node 1 suspends and resumes 3 times)", clusterWrites), 5*time.Minute, func(ctx context.Context) error {
		return writeWorkload(ctx, cr.mb, cr.mirror, cr.c, 0, clusterWrites, nil)
	})
	cr.s.Note("writes: time", secs(time.Since(start)))
	if cr.c.node == 1 {
		cr.await("3 suspends and resumes", 3*time.Minute, errc)
	}
	cr.settleAndVerify()
}

// overrunNode is the node whose dlogd the reconnect scenario overruns.
const overrunNode = 1

// overrun stops dlogd (SIGSTOP) for hold while 8 dmsetup status calls
// each send the kernel's STATUS_INFO: with a small receive buffer the
// queue overruns and the kernel's sends fail with -ESRCH, which starts its
// reconnect. Then dlogd continues and every status call must complete.
func (cr *clusterRun) overrun(hold time.Duration) error {
	pid := cr.d.Pid()
	if pid == 0 {
		return fmt.Errorf("dlogd is not running")
	}
	logCmd("# SIGSTOP dlogd (pid %d) for %v under 8 dmsetup status calls", pid, hold)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const calls = 8
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := dmsetup(ctx, "status", cr.name)
			errs <- err
		}()
	}
	time.Sleep(hold)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return err
	}
	logCmd("# SIGCONT dlogd (pid %d)", pid)
	for range calls {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// await is a step that waits for the outcome of work this node started in
// the background.
func (cr *clusterRun) await(name string, timeout time.Duration, outcome <-chan error) {
	awaitStep(cr.s, name, timeout, outcome)
}

// awaitStep is a step that waits for the outcome of work started in the
// background.
func awaitStep(s *S, name string, timeout time.Duration, outcome <-chan error) {
	s.Do(name, timeout, func(ctx context.Context) error {
		select {
		case err := <-outcome:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// settleAndVerify ends a scenario whose writes are done on every node:
// full sync with no I/O, healthy status, every acknowledged write read back
// through the mirror, then the legs compared.
func (cr *clusterRun) settleAndVerify() {
	cr.barrier(3, cr.all)
	cr.waitFullSync("in sync after the writes", true)
	cr.healthy("status after the writes")
	cr.verifyOn(cr.mirror, "through the mirror on node "+fmt.Sprint(cr.c.node), cr.all)
	cr.finish(cr.all)
}

// Phases of the host's mailbox sector (sector 0) in the partition
// scenarios; tests/vm/cluster_test.go publishes them.
const (
	hostPhaseCut    = 1
	hostPhaseHealed = 2
	// cutPhase is the node phase at which the host cuts the link: every
	// node has its writes under way.
	cutPhase = 3
	// cutGrace is how long after the cut corosync needs to declare the
	// isolated node gone (token 5 s plus consensus), before which a write
	// acknowledged on either side is legitimate.
	cutGrace = 20 * time.Second
	// partitionWrites per node; write k of a node goes to a region that
	// node has not written before while k < regions/nodes.
	partitionWrites = 120
)

// regionBlockOf is the block of node's seq-th write in the partition
// scenarios: each node owns every nodes-th region, and its first
// regions/nodes writes each hit a region of its own never written before
// (each needs a new mark), the later ones the same regions again at other
// blocks.
func regionBlockOf(node, nodes, seq int) int64 {
	const regions = clLegBytes / (clusterRegion * 512)
	const perRegion = clusterRegion * 512 / clusterBlock
	per := regions / nodes
	r := (seq%per)*nodes + node - 1
	return int64(r*perRegion + (seq/per)%perRegion)
}

// freshWrites is how many writes of a node each hit a region it has not
// written before (regionBlockOf).
func freshWrites(nodes int) int { return clLegBytes / (clusterRegion * 512) / nodes }

// scenClPartition: the host cuts node dlog.victim off the network while
// every node writes (each write of the cut a new region of its own), then
// heals it. The majority keeps writing; the isolated node acknowledges no
// write after corosync can have noticed (cutGrace) until the heal; its held
// writes complete after the heal; the log reports A (no failed FLUSH);
// every node reaches full sync with no operator step; the legs are
// identical and every acknowledged write reads back; no dlogd logged a
// split brain. With two nodes (two_node, no fence confirms a live node)
// neither half is a majority of the last view, so neither acknowledges a
// write needing a new mark during the cut, and the heal is a rejoin.
func scenClPartition(s *S) {
	cr := startCluster(s, "partition")
	iso := cr.c.victim
	if iso == 0 {
		s.Fail("isolated node", "dlog.victim set by the host", "0", "partition needs the node the host cuts off")
	}
	cr.c.layout = regionBlockOf
	cr.sync = "nosync"
	cr.create()
	cr.barrier(2, cr.all)
	type ackAt struct {
		cut, grace, heal int
	}
	var at ackAt
	var werr error
	var healed atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		werr = writeWorkload(s.Context(), cr.mb, cr.mirror, cr.c, 0, partitionWrites, func(seq int) {
			if seq == 9 {
				_ = cr.mb.phase(cutPhase)
			}
			if !healed.Load() {
				time.Sleep(800 * time.Millisecond) // spread the writes over the cut
			}
		})
	}()
	cr.s.Do("the host cuts the link", 4*time.Minute, func(ctx context.Context) error {
		return cr.waitHost(ctx, hostPhaseCut)
	})
	at.cut = cr.acked()
	cutAt := time.Now()
	select {
	case <-time.After(cutGrace):
	case <-done:
	}
	at.grace = cr.acked()
	cr.s.Value("corosync's view on this node at cut+grace", 30*time.Second, func(ctx context.Context) (string, error) {
		n, q, err := members(ctx)
		return fmt.Sprintf("%d votes, quorate=%v", n, q), err
	})
	cr.s.Do("the host heals the link", 4*time.Minute, func(ctx context.Context) error {
		return cr.waitHost(ctx, hostPhaseHealed)
	})
	healed.Store(true)
	at.heal = cr.acked()
	cr.s.Note("acknowledged writes at the cut, cut+grace, heal", fmt.Sprintf("%d, %d, %d (cut lasted %.0f s)", at.cut, at.grace, at.heal, time.Since(cutAt).Seconds()))
	cr.s.Do(fmt.Sprintf("every write of this node completes after the heal (%d)", partitionWrites), 4*time.Minute, func(ctx context.Context) error {
		select {
		case <-done:
			return werr
		case <-ctx.Done():
			return fmt.Errorf("%d of %d writes acknowledged: %w", cr.acked(), partitionWrites, ctx.Err())
		}
	})
	cr.s.Do(fmt.Sprintf("corosync: all %d nodes members again, quorate", cr.c.nodes), 3*time.Minute, func(ctx context.Context) error {
		return waitMembers(ctx, cr.c.nodes, true)
	})
	cr.barrier(4, cr.all)
	// Each node publishes what it acknowledged during the cut (after the
	// grace) in the mailbox's second sector per node.
	// Only writes to regions this node had never written count: each
	// needed a new mark (a later write may find its region still dirty).
	fresh := max(0, min(at.heal, freshWrites(cr.c.nodes))-at.grace)
	cr.s.Do("publish this node's writes acknowledged during the cut", 10*time.Second, func(ctx context.Context) error {
		return cr.mb.publishAt(cr.c.nodes+cr.c.node, mbState{Phase: 4, Acked: fresh})
	})
	cr.barrier(5, cr.all)
	cr.s.Expect("writes acknowledged while cut off, per node (after the grace)", cr.partitionWant(iso), 30*time.Second, func(ctx context.Context) (string, error) {
		var parts []string
		acked := make(map[int]int)
		for _, n := range cr.all {
			st, err := cr.mb.read(cr.c.nodes + n)
			if err != nil {
				return "", err
			}
			acked[n] = st.Acked
			parts = append(parts, fmt.Sprintf("node %d: %d", n, st.Acked))
		}
		cr.s.Logf("during the cut: %s", strings.Join(parts, ", "))
		return cr.partitionGot(iso, acked), nil
	})
	cr.healthy("status after the heal (no FLUSH failed)")
	cr.s.Expect("dlogd's log: no split brain", "none", 10*time.Second, func(context.Context) (string, error) {
		b, err := os.ReadFile(cr.d.LogPath)
		if err != nil {
			return "", err
		}
		if n := bytes.Count(bytes.ToLower(b), []byte("split brain")); n > 0 {
			return fmt.Sprintf("%d lines name a split brain", n), nil
		}
		return "none", nil
	})
	cr.waitFullSync("every node in sync after the heal with no operator step", true)
	cr.verifyOn(cr.mirror, "through the mirror on node "+fmt.Sprint(cr.c.node), cr.all)
	cr.finish(cr.all)
}

// partitionWant and partitionGot: with three nodes the majority writes and
// the isolated node acknowledges nothing; with two, neither half (no
// fence confirms the other).
func (cr *clusterRun) partitionWant(iso int) string {
	if cr.c.nodes == 2 {
		return "neither half acknowledged writes"
	}
	return fmt.Sprintf("majority acknowledged writes, node %d none", iso)
}

func (cr *clusterRun) partitionGot(iso int, acked map[int]int) string {
	if cr.c.nodes == 2 {
		if acked[1] > 0 || acked[2] > 0 {
			return fmt.Sprintf("node 1 acknowledged %d, node 2 %d writes needing new marks while neither half was a majority or confirmed the other fenced", acked[1], acked[2])
		}
		return "neither half acknowledged writes"
	}
	majority := true
	for n, a := range acked {
		if n != iso && a == 0 {
			majority = false
		}
	}
	switch {
	case !majority:
		return fmt.Sprintf("a majority node acknowledged nothing during the cut (%v)", acked)
	case acked[iso] > 0:
		return fmt.Sprintf("node %d acknowledged %d writes needing new marks while cut off", iso, acked[iso])
	}
	return fmt.Sprintf("majority acknowledged writes, node %d none", iso)
}

// acked is how many of this node's writes were acknowledged so far.
func (cr *clusterRun) acked() int { return cr.mb.ackedNow() }

// waitHost waits for the host's mailbox sector to reach phase p.
func (cr *clusterRun) waitHost(ctx context.Context, p int) error {
	for {
		st, err := cr.mb.read(0)
		if err != nil {
			return err
		}
		if st.Phase >= p {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("host at phase %d, waiting for %d: %w", st.Phase, p, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

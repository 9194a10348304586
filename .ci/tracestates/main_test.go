package main

import (
	"os"
	"path/filepath"
	rtrace "runtime/trace"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/exp/trace"
)

// TestFindsASleeperInSystemCalls traces a goroutine that sleeps in system
// calls (as the committer does in fdatasync) beside two busy ones, and
// checks that it is the one found and that each of its calls is measured.
func TestFindsASleeperInSystemCalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.trace")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtrace.Start(f); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	// A signal (the runtime's preemption) can cut a sleep short: such a
	// call may or may not be long enough to count.
	const calls, each = 20, 2 * time.Millisecond
	interrupted := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts := syscall.NsecToTimespec(int64(each))
		for whole := 0; whole < calls; {
			if _, _, errno := syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0); errno != 0 {
				interrupted++
			} else {
				whole++
			}
		}
	}()
	<-done
	close(stop)
	rtrace.Stop()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	avg, gs, err := readStates(path)
	if err != nil {
		t.Fatal(err)
	}
	if avg.span < calls*each || avg.procs <= 0 || avg.running <= 0 || avg.syscall <= 0 {
		t.Fatalf("averages %+v: want a span of at least %v, and Ps held and goroutines running and in calls", avg, calls*each)
	}
	var sleeper trace.GoID
	for id, g := range gs {
		if g.in[trace.GoSyscall] > gs[sleeper].inOr(trace.GoSyscall) {
			sleeper = id
		}
	}
	if got := gs[sleeper].inOr(trace.GoSyscall); got < calls*each {
		t.Fatalf("the longest time in system calls is %v, want at least %v", got, calls*each)
	}
	held, err := heldInCalls(path, sleeper)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) < calls || len(held) > calls+interrupted {
		t.Fatalf("measured %d long calls, want %d (and up to %d interrupted)", len(held), calls, interrupted)
	}
	for _, d := range held {
		if d <= 0 || d > 10*each {
			t.Fatalf("a P held for %v in a call of %v", d, each)
		}
	}
}

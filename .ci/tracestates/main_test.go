package main

import (
	"os"
	"path/filepath"
	"runtime"
	rtrace "runtime/trace"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/exp/trace"
)

// TestFindsASleeperInSystemCalls traces a goroutine that sleeps in system
// calls (as the committer does in fdatasync) beside busy ones, and checks
// that it is the one found, that each of its calls is measured, and that
// sysmon's taking of its P is seen.
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
	for range runtime.GOMAXPROCS(0) { // every P busy, so that sysmon takes the sleeper's
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
	const whole, each = 20, 2 * time.Millisecond
	interrupted := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts := syscall.NsecToTimespec(int64(each))
		for n := 0; n < whole; {
			if _, _, errno := syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0); errno != 0 {
				interrupted++
			} else {
				n++
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
	if avg.span < whole*each || avg.procs <= 0 || avg.running <= 0 || avg.syscall <= 0 {
		t.Fatalf("averages %+v: want a span of at least %v, and Ps held and goroutines running and in calls", avg, whole*each)
	}
	var sleeper trace.GoID
	for id, g := range gs {
		if g.in[trace.GoSyscall] > gs[sleeper].inOr(trace.GoSyscall) {
			sleeper = id
		}
	}
	if got := gs[sleeper].inOr(trace.GoSyscall); got < whole*each {
		t.Fatalf("the longest time in system calls is %v, want at least %v", got, whole*each)
	}
	calls, err := longCalls(path, sleeper)
	if err != nil {
		t.Fatal(err)
	}
	slept, taken := 0, 0
	for _, c := range calls {
		if c.held < c.took {
			taken++
		}
		if c.held <= 0 || c.held > c.took {
			t.Fatalf("a call of %v held its P for %v", c.took, c.held)
		}
		if c.took >= each {
			slept++
		}
	}
	if slept < whole || slept > whole+interrupted {
		t.Fatalf("measured %d calls of %v or more, want %d (and up to %d interrupted)", slept, each, whole, interrupted)
	}
	if taken == 0 {
		t.Fatalf("no P was taken from any of %d calls of %v with every P busy", len(calls), each)
	}
}

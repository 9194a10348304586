// Command tracestates reads an execution trace (go test -trace) and reports
// where the scheduler's time went: how many Ps were held and how many
// goroutines ran, waited in a system call or waited for a P, on average;
// and, for the goroutine that spent longest in system calls (under the
// write benchmark, the store's committer, in its fdatasyncs), its time in
// each state and how long its P stayed held after it entered a long call.
//
// Go keeps a goroutine's P while it is in a system call until sysmon takes
// it back, which takes from 20 µs to several ms depending on how long
// sysmon has found nothing to do; meanwhile that P runs nothing. Usage:
//
//	go test -run '^$' -bench 'BenchmarkCreateDeployment/clients-32' -benchtime 1x -trace w.trace .
//	go -C .ci/tracestates run . "$PWD/w.trace"
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/exp/trace"
)

// longCall is a system call long enough to matter for the P it holds.
const longCall = 100 * time.Microsecond

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tracestates FILE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "tracestates:", err)
		os.Exit(1)
	}
}

// goroutine is one goroutine's time in each state.
type goroutine struct {
	in    map[trace.GoState]time.Duration
	since trace.Time
}

func run(path string) error {
	byState, byGoroutine, err := readStates(path)
	if err != nil {
		return err
	}
	fmt.Printf("over %v: Ps held %.2f, goroutines running %.2f, in system calls %.2f, waiting for a P %.2f (averages)\n",
		byState.span, byState.procs, byState.running, byState.syscall, byState.runnable)
	var busiest trace.GoID
	for id, g := range byGoroutine {
		if g.in[trace.GoSyscall] > byGoroutine[busiest].inOr(trace.GoSyscall) {
			busiest = id
		}
	}
	g := byGoroutine[busiest]
	if g == nil {
		return nil
	}
	fmt.Printf("goroutine %d (longest in system calls):", busiest)
	for _, s := range []trace.GoState{trace.GoRunning, trace.GoSyscall, trace.GoRunnable, trace.GoWaiting} {
		fmt.Printf(" %s %v (%.0f %%)", s, g.in[s].Round(time.Millisecond), 100*float64(g.in[s])/float64(byState.span))
	}
	fmt.Println()
	calls, err := longCalls(path, busiest)
	if err != nil {
		return err
	}
	held := make([]time.Duration, len(calls))
	for i, c := range calls {
		held[i] = c.held
	}
	if len(held) > 0 {
		slices.Sort(held)
		var sum time.Duration
		for _, d := range held {
			sum += d
		}
		fmt.Printf("its P held after entering a call over %v: %d calls, %v in all, p50 %v, p90 %v, max %v\n",
			longCall, len(held), sum.Round(time.Millisecond), held[len(held)/2], held[len(held)*9/10], held[len(held)-1])
	}
	return nil
}

func (g *goroutine) inOr(s trace.GoState) time.Duration {
	if g == nil {
		return 0
	}
	return g.in[s]
}

// averages are time-weighted counts over the trace.
type averages struct {
	span                              time.Duration
	procs, running, syscall, runnable float64
}

func readStates(path string) (averages, map[trace.GoID]*goroutine, error) {
	var first, last trace.Time
	var procs, counts = 0, map[trace.GoState]int{}
	var areaProcs float64
	area := map[trace.GoState]float64{}
	gs := map[trace.GoID]*goroutine{}
	err := eachEvent(path, func(ev trace.Event) {
		t := ev.Time()
		if first == 0 {
			first, last = t, t
		}
		dt := float64(t.Sub(last))
		areaProcs += dt * float64(procs)
		for s, n := range counts {
			area[s] += dt * float64(n)
		}
		last = t
		if ev.Kind() != trace.EventStateTransition {
			return
		}
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceProc:
			from, to := st.Proc()
			if from == trace.ProcRunning {
				procs--
			}
			if to == trace.ProcRunning {
				procs++
			}
		case trace.ResourceGoroutine:
			from, to := st.Goroutine()
			id := st.Resource.Goroutine()
			g := gs[id]
			if g == nil {
				g = &goroutine{in: map[trace.GoState]time.Duration{}}
				gs[id] = g
			} else {
				g.in[from] += t.Sub(g.since)
			}
			g.since = t
			counts[from]--
			counts[to]++
		}
	})
	if err != nil {
		return averages{}, nil, err
	}
	span := float64(last.Sub(first))
	if span == 0 {
		return averages{}, nil, fmt.Errorf("%s: no events", path)
	}
	return averages{
		span:     time.Duration(span),
		procs:    areaProcs / span,
		running:  area[trace.GoRunning] / span,
		syscall:  area[trace.GoSyscall] / span,
		runnable: area[trace.GoRunnable] / span,
	}, gs, nil
}

// call is one system call: how long it took, and how long the goroutine's
// P stayed held in it (until sysmon took it, or the call's end).
type call struct{ took, held time.Duration }

// longCalls returns goroutine id's system calls longer than longCall.
func longCalls(path string, id trace.GoID) ([]call, error) {
	var calls []call
	var inCall bool
	var start trace.Time
	var proc trace.ProcID
	var heldFor time.Duration // 0 while the P is held
	err := eachEvent(path, func(ev trace.Event) {
		if ev.Kind() != trace.EventStateTransition {
			return
		}
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceGoroutine:
			if st.Resource.Goroutine() != id {
				return
			}
			from, to := st.Goroutine()
			switch {
			case to == trace.GoSyscall:
				inCall, start, proc, heldFor = true, ev.Time(), ev.Proc(), 0
			case from == trace.GoSyscall && inCall:
				inCall = false
				d := ev.Time().Sub(start)
				if d <= longCall {
					return
				}
				if heldFor == 0 {
					heldFor = d
				}
				calls = append(calls, call{took: d, held: heldFor})
			}
		case trace.ResourceProc:
			from, to := st.Proc()
			if inCall && heldFor == 0 && st.Resource.Proc() == proc && from == trace.ProcRunning && to != trace.ProcRunning {
				heldFor = max(ev.Time().Sub(start), 1)
			}
		}
	})
	return calls, err
}

// eachEvent hands every event of the trace at path to fn, in order. The
// two passes read it afresh: the goroutine the second follows is known only
// after the first.
func eachEvent(path string, fn func(trace.Event)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return err
	}
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fn(ev)
	}
}

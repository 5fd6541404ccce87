// Package procstat reads a process's CPU time and resident memory from
// /proc, as `ps` does, so the load generator can charge the server for the
// work a run made it do.
package procstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Sample is one reading of a process.
type Sample struct {
	CPU time.Duration // utime + stime since the process started
	RSS uint64        // resident set size in bytes (VmRSS)
}

// Read samples process pid.
func Read(pid int) (Sample, error) {
	ticks, err := readProc(pid, "stat", "cpu time", parseStat)
	if err != nil {
		return Sample{}, err
	}
	rss, err := readProc(pid, "status", "memory", parseStatus)
	if err != nil {
		return Sample{}, err
	}
	return Sample{CPU: time.Duration(ticks) * time.Second / time.Duration(clockTick()), RSS: rss}, nil
}

// readProc parses /proc/<pid>/<file>; what names the figure it holds in
// errors.
func readProc(pid int, file, what string, parse func([]byte) (uint64, error)) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0, fmt.Errorf("reading %s of pid %d: %w", what, pid, err)
	}
	v, err := parse(b)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return v, nil
}

// ReadAll samples several processes; the sum is in Total.
func ReadAll(pids []int) ([]Sample, Sample, error) {
	out := make([]Sample, len(pids))
	var total Sample
	for i, pid := range pids {
		s, err := Read(pid)
		if err != nil {
			return nil, Sample{}, err
		}
		out[i] = s
		total.CPU += s.CPU
		total.RSS += s.RSS
	}
	return out, total, nil
}

// Self is the calling process's own CPU time, from getrusage.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseStat returns utime+stime in clock ticks from the contents of
// /proc/PID/stat. The command name in parentheses may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	// After ')' come field 3 (state) onwards; utime and stime are fields
	// 14 and 15.
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: utime/stime: %w", err)
	}
	return ut + st, nil
}

// parseStatus returns VmRSS in bytes from the contents of /proc/PID/status.
func parseStatus(b []byte) (uint64, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("status: VmRSS line %q", line)
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("status: no VmRSS (kernel thread or zombie?)")
}

// atClkTck is the auxiliary vector entry holding the kernel's USER_HZ.
const atClkTck = 17

var clockTick = sync.OnceValue(func() uint64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	return auxvValue(b, atClkTck, 100)
})

// auxvValue finds key in a 64-bit little-endian auxiliary vector.
func auxvValue(b []byte, key, def uint64) uint64 {
	for len(b) >= 16 {
		k := binary.LittleEndian.Uint64(b)
		v := binary.LittleEndian.Uint64(b[8:])
		if k == key && v > 0 {
			return v
		}
		if k == 0 {
			break
		}
		b = b[16:]
	}
	return def
}

// Peak samples processes' RSS in the background and keeps the highest
// total seen.
type Peak struct {
	mu   sync.Mutex
	max  uint64
	each []uint64
	stop chan struct{}
	done chan struct{}
}

// StartPeak samples pids every interval until Stop.
func StartPeak(pids []int, interval time.Duration) *Peak {
	p := &Peak{each: make([]uint64, len(pids)), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			p.sample(pids)
			select {
			case <-p.stop:
				p.sample(pids)
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *Peak) sample(pids []int) {
	each, total, err := ReadAll(pids)
	if err != nil {
		return // a process that exited keeps its last peak
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.max = max(p.max, total.RSS)
	for i, s := range each {
		p.each[i] = max(p.each[i], s.RSS)
	}
}

// Stop ends sampling and returns the peak total RSS and each process's
// own peak.
func (p *Peak) Stop() (total uint64, each []uint64) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max, append([]uint64(nil), p.each...)
}

// MachineSample is the CPU time all of the machine's CPUs spent since boot.
type MachineSample struct {
	// Busy is every state of /proc/stat's cpu line but idle and iowait.
	Busy time.Duration
	// IRQ is the part of Busy spent in hard and soft interrupts: on
	// loopback, much of the kernel's network processing, which is charged
	// to no process.
	IRQ time.Duration
}

// Machine reads the whole machine's CPU time, so a run can tell how much of
// the machine went to processes it did not measure.
func Machine() (MachineSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineSample{}, fmt.Errorf("reading machine cpu time: %w", err)
	}
	busy, irq, err := parseMachine(b)
	if err != nil {
		return MachineSample{}, err
	}
	tick := time.Second / time.Duration(clockTick())
	return MachineSample{Busy: time.Duration(busy) * tick, IRQ: time.Duration(irq) * tick}, nil
}

// parseMachine returns the busy and interrupt ticks of the first ("cpu")
// line of /proc/stat: user nice system idle iowait irq softirq steal, then
// guest time, which user already holds.
func parseMachine(b []byte) (busy, irq uint64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i := 1; i <= 8; i++ {
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: field %d: %w", i, err)
		}
		switch i {
		case 4, 5: // idle, iowait
		case 6, 7:
			irq += v
			busy += v
		default:
			busy += v
		}
	}
	return busy, irq, nil
}

package procstat

import (
	"encoding/binary"
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"plain", "1234 (herald) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 12 0 100 2000000 3000 18446744073709551615", 325, false},
		{"name with spaces and parens", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 5 100 10", 30, false},
		{"truncated", "1 (x) S 1 2 3", 0, true},
		{"no name", "1 x S", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 2 0 0", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseStat = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"usual", "Name:\therald\nVmPeak:\t  900 kB\nVmRSS:\t   51200 kB\nRssAnon:\t 1 kB\n", 51200 * 1024, false},
		{"kernel thread", "Name:\tkthreadd\nState:\tS\n", 0, true},
		{"bad unit", "VmRSS:\t 12 MB\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseStatus = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestAuxv(t *testing.T) {
	var b []byte
	for _, kv := range [][2]uint64{{6, 4096}, {17, 250}, {0, 0}} {
		b = binary.LittleEndian.AppendUint64(b, kv[0])
		b = binary.LittleEndian.AppendUint64(b, kv[1])
	}
	if got := auxvValue(b, 17, 100); got != 250 {
		t.Fatalf("AT_CLKTCK = %d, want 250", got)
	}
	if got := auxvValue(b[:16], 17, 100); got != 100 {
		t.Fatalf("missing AT_CLKTCK = %d, want the default 100", got)
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS == 0 {
		t.Fatal("own RSS is 0")
	}
	p := StartPeak([]int{os.Getpid()}, 1000)
	total, each := p.Stop()
	if total == 0 || len(each) != 1 || each[0] != total {
		t.Fatalf("peak = %d, %v", total, each)
	}
	if _, err := Read(-1); err == nil {
		t.Fatal("Read(-1) succeeded")
	}
}

func TestParseMachine(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		busy    uint64
		irq     uint64
		wantErr bool
	}{
		{"usual", "cpu  100 5 50 9000 20 3 2 1 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n", 161, 5, false},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8\n", 0, 0, true},
		{"short", "cpu 1 2 3\n", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			busy, irq, err := parseMachine([]byte(tc.in))
			if (err != nil) != tc.wantErr || busy != tc.busy || irq != tc.irq {
				t.Fatalf("parseMachine = %d, %d, %v; want %d, %d, error %v", busy, irq, err, tc.busy, tc.irq, tc.wantErr)
			}
		})
	}
	if _, err := Machine(); err != nil {
		t.Fatal(err)
	}
}

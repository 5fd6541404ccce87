package position

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"
)

func TestString(t *testing.T) {
	created := time.Date(2025, 11, 25, 20, 42, 1, 123456789, time.UTC)
	at := time.Date(2025, 11, 25, 20, 43, 0, 987654321, time.UTC)
	tests := []struct {
		name string
		in   Position
		want string
	}{
		{"zero", Position{}, "1.0.0.0"},
		{"event", Position{Epoch: EpochOf(created), Seq: 42, Time: at}, "1.dei2fpryx251.16.mif1lse3"},
		{"max sequence", Position{Epoch: 1, Seq: math.MaxUint64, Time: time.UnixMilli(1)}, "1.1.3w5e11264sgsf.1"},
		{"negative epoch", Position{Epoch: -5, Seq: 1}, "1.-5.1.0"},
		{"time before 1970", Position{Epoch: 1, Seq: 1, Time: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, "1.1.1.0"},
		{"time after 9999", Position{Epoch: 1, Seq: 1, Time: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}, "1.1.1.2htner8qnz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.String()
			if got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			back, err := Parse(got)
			if err != nil {
				t.Fatalf("Parse(%q): %v", got, err)
			}
			if back.Epoch != tt.in.Epoch || back.Seq != tt.in.Seq {
				t.Fatalf("Parse(%q) = %+v, want epoch %d seq %d", got, back, tt.in.Epoch, tt.in.Seq)
			}
			if back.String() != got {
				t.Fatalf("String(Parse(%q)) = %q", got, back.String())
			}
		})
	}
}

func TestParseKeepsTheMillisecond(t *testing.T) {
	at := time.Date(2025, 11, 25, 20, 43, 0, 987654321, time.UTC)
	p, err := Parse(Position{Epoch: 7, Seq: 9, Time: at}.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Truncate(time.Millisecond); !p.Time.Equal(want) {
		t.Fatalf("time = %v, want %v", p.Time, want)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"version only", "1"},
		{"unknown version", "2.1.1.1"},
		{"too few fields", "1.1.1"},
		{"too many fields", "1.1.1.1.1"},
		{"empty field", "1..1.1"},
		{"upper case", "1.A.1.1"},
		{"leading zero", "1.01.1.1"},
		{"plus sign", "1.+1.1.1"},
		{"minus zero", "1.-0.1.1"},
		{"negative sequence", "1.1.-1.1"},
		{"negative time", "1.1.1.-1"},
		{"time after 9999", "1.1.1.2htner8qo0"},
		{"sequence overflow", "1.1.3w5e11264sgsg.1"},
		{"epoch overflow", "1.1y2p0ij32e8e8.1.1"},
		{"not base 36", "1.1_0.1.1"},
		{"space", "1.1.1.1 "},
		{"too long", "1.1.1." + string(make([]byte, 80))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := Parse(tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %+v, %v; want ErrMalformed", tt.in, p, err)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	in := struct {
		Position Position `json:"position"`
	}{Position{Epoch: 3, Seq: 4, Time: time.UnixMilli(5)}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"position":"1.3.4.5"}` {
		t.Fatalf("json = %s", b)
	}
	var out struct {
		Position Position `json:"position"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Position.String() != "1.3.4.5" {
		t.Fatalf("unmarshal = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"position":"x"}`), &out); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unmarshal of a bad position: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"1.0.0.0", "1.dei2fpryx251.16.mif1lse3", "1.-5.1.0", "1.1.3w5e11264sgsf.1", "1.1.1.2htner8qnz",
		"", "1", "1.A.1.1", "1.01.1.1", "1.+1.1.1", "1.-0.1.1", "2.1.1.1", "1.1.1.-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error %v is not ErrMalformed", s, err)
			}
			return
		}
		if got := p.String(); got != s {
			t.Fatalf("String(Parse(%q)) = %q", s, got)
		}
		again, err := Parse(p.String())
		if err != nil || again != p {
			t.Fatalf("Parse(String(%+v)) = %+v, %v", p, again, err)
		}
	})
}

package election

import "testing"

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		part, whole int64
		want        string
	}{
		{2, 3, "66.67"},
		{1, 3, "33.33"},
		{1, 8, "12.50"},
		{1, 200, "0.50"},
		{1, 20000, "0.01"}, // exactly half of the last digit rounds up
		{1, 20001, "0.00"},
		{0, 7, "0.00"},
		{7, 7, "100.00"},
		{9, 7, "128.57"},
		{1, 0, ""},
		{-1, 5, ""},
		{1 << 60, 3 << 60, "33.33"}, // would overflow int64 arithmetic
	} {
		if got := Percent(tc.part, tc.whole); got != tc.want {
			t.Errorf("Percent(%d, %d) = %q, want %q", tc.part, tc.whole, got, tc.want)
		}
	}
}

func FuzzPercent(f *testing.F) {
	f.Add(int64(2), int64(3))
	f.Add(int64(1), int64(20000))
	f.Fuzz(func(t *testing.T, part, whole int64) {
		if whole <= 0 || part < 0 || part > whole {
			return
		}
		got := Percent(part, whole)
		// The rounded figure is within half a unit of the last digit.
		var cents int64
		for _, c := range got {
			if c >= '0' && c <= '9' {
				cents = cents*10 + int64(c-'0')
			}
		}
		lo, hi := float64(cents)-0.5, float64(cents)+0.5
		exact := float64(part) * 10000 / float64(whole)
		if exact < lo-1e-6*exact-1e-9 || exact > hi+1e-6*exact+1e-9 {
			t.Fatalf("Percent(%d, %d) = %s, exact %.6f", part, whole, got, exact/100)
		}
	})
}

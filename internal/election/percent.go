package election

import "math/big"

// Percent renders part/whole as a percentage with two decimals, rounded
// half up from the exact ratio (2/3 is "66.67", 1/8 is "12.50"). It is the
// one rounding rule for every share shown to people: terminal, dashboard,
// notice and the audit CSVs all use it, so a figure reads the same
// everywhere. The whole being zero (no roster yet) gives "".
//
// Thresholds are never decided on the rounded figure: the tally compares
// exact integers, and this is for reading only.
func Percent(part, whole int64) string {
	if whole <= 0 || part < 0 {
		return ""
	}
	// round(part·10000/whole) = floor((2·part·10000 + whole) / (2·whole)),
	// computed exactly; big.Int keeps large areas from overflowing.
	n := new(big.Int).Mul(big.NewInt(part), big.NewInt(20000))
	n.Add(n, big.NewInt(whole))
	n.Quo(n, new(big.Int).Mul(big.NewInt(whole), big.NewInt(2)))
	return FormatArea(n.Int64())
}

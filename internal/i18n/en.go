package i18n

// en is the English catalogue, in zh.go's order.
var en = map[string]string{
	// Election states.
	"state.defined":   "not yet open",
	"state.open":      "open",
	"state.closed":    "closed",
	"state.certified": "certified (final)",

	// Outcomes.
	"outcome.passed":      "passed",
	"outcome.failed":      "failed",
	"outcome.no_quorum":   "no quorum",
	"outcome.elected":     "elected",
	"outcome.not_elected": "not elected",
	"outcome.tied":        "tied",
	"outcome.pending":     "pending",

	// Quorum and thresholds (Civil Code art. 278).
	"quorum.title":     "Participation",
	"quorum.area":      "Floor area",
	"quorum.headcount": "Owners",
	"quorum.mark":      "two thirds",
}

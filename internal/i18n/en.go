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

	// The live terminal view, 'doorstep tally watch' (and the rules both
	// live views name).
	"watch.rule.ordinary":   "ordinary majority: yes by more than half of the participating area and owners",
	"watch.rule.special":    "special majority: yes by at least three quarters of the participating area and owners",
	"watch.rule.candidates": "election: qualified with more than half of the participating area and owners",
	"watch.rule.seats":      "election of %d: qualified with more than half of the participating area and owners",
	"watch.retrying":        "The live connection dropped (%v); connecting again in %v…",
	"watch.title":           "Live tally: %s",
	"watch.since":           "%s (since %s)",
	"watch.state":           "State: %s",
	"watch.checkpoint":      "Computed at ballot log checkpoint %d, root %s",
	"watch.counted":         "Counted: %d of %d units",
	"watch.area_of":         "%s of %s m² (%s)",
	"watch.head_of":         "%s of %s owners (%s)",
	"watch.quorum":          "Participation (needs %s)",
	"watch.by_area":         "area",
	"watch.by_head":         "owners",
	"watch.yes":             "Yes (threshold %s)",
	"watch.held":            "Split owners whose headcount vote waits for the committee: %d",
	"watch.outcome":         "Outcome: %s",
	"watch.buildings":       "Turnout by building",
	"watch.col.building":    "BUILDING",
	"watch.col.units":       "UNITS COUNTED",
	"watch.col.area":        "AREA COUNTED m²",
	"watch.col.held":        "HELD",
	"watch.waiting":         "Waiting for the committee: %d contested units, %d split owners",
	"watch.devices":         "Devices",
	"watch.col.device":      "DEVICE",
	"watch.col.last_sync":   "LAST SYNC",
	"watch.col.records":     "RECORDS HELD",
	"watch.col.unsent":      "UNSENT",
	"watch.never":           "never",
	"watch.not_said":        "not said",
	"watch.must_sync":       "must sync before the close",
	"watch.gaps":            "%d records missing",
	"watch.revoked":         "revoked",
	"watch.no_devices":      "no device enrolled yet",
}

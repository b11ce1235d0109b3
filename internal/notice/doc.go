// Package notice renders the results notice (公示) the election committee
// posts on the estate's notice board: a printable HTML page (A4, no
// scripts) of the election's tally against the thresholds of Civil Code
// art. 278, the units the committee settled, the ballot log checkpoint
// and how an owner checks a receipt. A preliminary notice runs during the
// objection period; the final one is printed only after the committee
// certified the result.
//
// It only renders: the tally, status, definition and settlements come in
// as the server and the log gave them, and every word comes from
// internal/i18n, so the CLI and the dashboard print the same page.
package notice

package connlimit

// Fit is fit, for the external tests.
var Fit = fit

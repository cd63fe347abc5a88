// Package chart draws the benchmark charts (bench/*.png from
// bench/cmd/benchreport, bench/vm-results.png from the VM benchmark) with
// gonum.org/v1/plot, rendered to PNG through its vgimg backend.
//
// It is benchmark tooling: dlogd never links it (cmd/dlogd/deps_test.go
// checks that no gonum package reaches the shipped binary). The package
// only adapts gonum to the shapes the reports use: lines of points with
// min-max spreads over log or linear axes, grouped bars (also on a log
// axis, which gonum's own BarChart cannot draw from zero), horizontal bars
// in stacked panels, and a Frame that maps data to pixels so tests can look
// for a series' colour where its data is.
package chart

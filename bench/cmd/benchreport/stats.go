package main

import (
	"math"
	"slices"
)

// summary is the median and range of one figure over the rounds.
type summary struct {
	N             int
	Median        float64
	Min, Max      float64
	Q1, Q3        float64 // quartiles (linear interpolation)
	Values        []float64
	ValuesByRound map[int]float64
}

func (s summary) ok() bool { return s.N > 0 }

// summarize computes the summary of vals (NaN when empty).
func summarize(vals []float64) summary {
	s := summary{N: len(vals), Median: math.NaN(), Min: math.NaN(), Max: math.NaN(), Q1: math.NaN(), Q3: math.NaN()}
	if len(vals) == 0 {
		return s
	}
	v := slices.Clone(vals)
	slices.Sort(v)
	s.Values = v
	s.Min, s.Max = v[0], v[len(v)-1]
	s.Median = quantile(v, 0.5)
	s.Q1, s.Q3 = quantile(v, 0.25), quantile(v, 0.75)
	return s
}

// quantile of sorted v, interpolating linearly between ranks.
func quantile(v []float64, q float64) float64 {
	if len(v) == 1 {
		return v[0]
	}
	pos := q * float64(len(v)-1)
	i := int(pos)
	if i >= len(v)-1 {
		return v[len(v)-1]
	}
	return v[i] + (v[i+1]-v[i])*(pos-float64(i))
}

// byRound returns the value of unit in each round of the samples of key
// (the last one if a round has several).
func (d *runData) byRound(key, unit string) map[int]float64 {
	m := make(map[int]float64)
	for _, s := range d.Samples[key] {
		if v, ok := s.Metrics[unit]; ok {
			m[s.Round] = v
		}
	}
	return m
}

// stat summarizes unit over the rounds of key.
func (d *runData) stat(key, unit string) summary {
	m := d.byRound(key, unit)
	vals := make([]float64, 0, len(m))
	for _, v := range m {
		vals = append(vals, v)
	}
	s := summarize(vals)
	s.ValuesByRound = m
	return s
}

// speedup summarizes baseline time / subject time, round by round, over
// the rounds where both ran: above 1, the subject is faster.
func (d *runData) speedup(subject, baseline string) summary {
	sub, base := d.byRound(subject, "ns/op"), d.byRound(baseline, "ns/op")
	var r []float64
	for round, t := range sub {
		if b, ok := base[round]; ok && t > 0 {
			r = append(r, b/t)
		}
	}
	return summarize(r)
}

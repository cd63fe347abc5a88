package faultio

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Spec is a fault plan given as text, for processes that cannot be handed
// a *Faults (dlogd reads it from DLOG_FAULTIO in the soak campaign):
// comma-separated key=value pairs, each optional:
//
//	write=P   probability that a block write fails with EIO
//	sync=P    probability that a cache flush fails with EIO
//	tear=P    probability that a write batch is torn (then the device is dead)
//	seed=N    random seed (each device gets seed+its index)
type Spec struct {
	Write, Sync, Tear float64
	Seed              uint64
}

// ParseSpec parses a Spec.
func ParseSpec(s string) (Spec, error) {
	var sp Spec
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Spec{}, fmt.Errorf("faultio: %q: want key=value", kv)
		}
		var err error
		switch k {
		case "write":
			sp.Write, err = parseProb(v)
		case "sync":
			sp.Sync, err = parseProb(v)
		case "tear":
			sp.Tear, err = parseProb(v)
		case "seed":
			sp.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			err = fmt.Errorf("unknown key (want write, sync, tear or seed)")
		}
		if err != nil {
			return Spec{}, fmt.Errorf("faultio: %q: %w", kv, err)
		}
	}
	return sp, nil
}

func parseProb(v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err != nil || p < 0 || p > 1 {
		return 0, fmt.Errorf("want a probability between 0 and 1")
	}
	return p, nil
}

// Faults returns a fresh fault plan for the n-th device.
func (sp Spec) Faults(n int) *Faults {
	return &Faults{
		WriteErrorRate: sp.Write,
		SyncErrorRate:  sp.Sync,
		TearRate:       sp.Tear,
		Rand:           rand.New(rand.NewPCG(sp.Seed+uint64(n), 0x5eed)),
	}
}

// String formats sp as ParseSpec reads it.
func (sp Spec) String() string {
	return fmt.Sprintf("write=%g,sync=%g,tear=%g,seed=%d", sp.Write, sp.Sync, sp.Tear, sp.Seed)
}

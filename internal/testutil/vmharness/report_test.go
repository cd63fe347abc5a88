package vmharness

import (
	"reflect"
	"strings"
	"testing"
)

func TestStepString(t *testing.T) {
	for _, tc := range []struct {
		s    Step
		want string
	}{
		{Step{Scenario: "kcore", Step: "status", Status: StatusFail, Expected: "0 131072 mirror 2 7:0 7:1 128/128 1 AA 1 core", Got: "0 131072 mirror 2 7:0 7:1 64/128 1 AA 1 core"},
			`scenario kcore, step status: expected "0 131072 mirror 2 7:0 7:1 128/128 1 AA 1 core", got "0 131072 mirror 2 7:0 7:1 64/128 1 AA 1 core"`},
		{Step{Scenario: "kdisk", Step: "resync", Status: StatusFail, Expected: "128/128", Got: "error", Detail: "timed out after 2m0s"},
			"scenario kdisk, step resync: expected 128/128, got error (timed out after 2m0s)"},
		{Step{Scenario: "kdisk", Step: "remove", Status: StatusFail},
			"scenario kdisk, step remove: expected success, got failure"},
		{Step{Scenario: "dlogd-smoke", Step: "start", Status: StatusSkip, Detail: "dlogd is absent"},
			"scenario dlogd-smoke, step start: skipped: dlogd is absent"},
		{Step{Scenario: "kcore", Step: "create", Status: StatusOK, Seconds: 0.314},
			"scenario kcore, step create: ok (0.31 s)"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestParseReport(t *testing.T) {
	r, err := ParseReport([]byte(`{"kernel":"6.1.0-56-amd64","complete":true,"steps":[
		{"scenario":"setup","step":"insmod","status":"ok","duration_s":0.7},
		{"scenario":"kcore","step":"create","status":"ok"},
		{"scenario":"kcore","step":"status","status":"fail","expected":"a","got":"b"},
		{"scenario":"dlogd-smoke","step":"start","status":"skip","detail":"absent"},
		{"scenario":"kcore","step":"cleanup: remove","status":"ok"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Summary(); got != "3 ok, 1 failed, 1 skipped" {
		t.Errorf("Summary %q", got)
	}
	if f := r.Failures(); len(f) != 1 || f[0].Step != "status" || f[0].OK() {
		t.Errorf("Failures %+v", f)
	}
	names, steps := r.ByScenario()
	if !reflect.DeepEqual(names, []string{"setup", "kcore", "dlogd-smoke"}) || len(steps["kcore"]) != 3 || steps["kcore"][2].Step != "cleanup: remove" {
		t.Errorf("ByScenario %v %v", names, steps)
	}
	if r.Steps[0].Seconds != 0.7 || !r.Complete || r.Kernel != "6.1.0-56-amd64" {
		t.Errorf("%+v", r)
	}

	if _, err := ParseReport([]byte(`{"steps":[{"scenario":"a","step":"b","status":"maybe"}]}`)); err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Errorf("unknown status: %v", err)
	}
	if _, err := ParseReport([]byte(`{"steps":`)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

package transport_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/dlog-dev/dlog/transport"
)

// Options holds only what an operator configures; test modes (a fake
// kernel's port id) are reached through the package's tests alone
// (ListenFakeKernel in export_test.go).
func TestOptionsAreOperatorSettings(t *testing.T) {
	var got []string
	typ := reflect.TypeFor[transport.Options]()
	for i := range typ.NumField() {
		got = append(got, typ.Field(i).Name)
	}
	want := []string{"Logger", "RcvBuf", "Mode", "SendTimeout", "Poll", "NetpollWait", "Receivers"}
	if !slices.Equal(got, want) {
		t.Errorf("transport.Options fields %v, want %v", got, want)
	}
}

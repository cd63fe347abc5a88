package inspect

// DeviceFd exposes the descriptor of d to the tests (to check its flags).
func DeviceFd(d *Device) uintptr { return d.f.Fd() }

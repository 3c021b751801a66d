package traces

// Profile label keys. The kernels label every stage they run with these keys
// (runtime/pprof goroutine labels, seen in CPU profiles) and package profiles
// puts the same keys on every sample of a data-transfer profile, so that one
// `go tool pprof -tagfocus=stage=approx-scores` selects the same stage in
// either kind of profile.
const (
	// LabelMethod is the kernel's method, Trace.Method ("dense", "sparq").
	LabelMethod = "method"
	// LabelStage is the stage name, Stage.Name ("scores", "approx-scores").
	LabelStage = "stage"
	// LabelTensor is the tensor name: in a transfer profile the tensor a
	// sample moves; in a CPU profile the tensor that dominates the stage's
	// traffic, when one does.
	LabelTensor = "tensor"
	// LabelRole is the tensor's Role ("kv-cache", "intermediate", ...).
	LabelRole = "role"
	// LabelDirection is "read" or "write" (Direction.String).
	LabelDirection = "direction"
	// LabelLevel is the memory level the tensor is placed in on the device
	// the profile was priced for ("hbm", "l2", "sram").
	LabelLevel = "level"
)

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// accuracyRow is the README's accuracy table row for matching
// "| `validation/FILE` — ... | POINTS | MEDIAN % | MAX % | ...".
var accuracyRow = regexp.MustCompile("(?m)^\\| `(validation/[^`]+\\.csv)`[^|]*\\| (\\d+) \\| ([0-9.]+) % \\| ([0-9.]+) % \\|")

// TestReadmeAccuracy checks that README.md states what `bwsim validate`
// gives on the committed measurement files: points, median and maximum
// |error|, to the table's one decimal. Simulating the 862 H100 rows takes
// about a minute without the race detector, so the test runs only when
// BWSIM_README_ACCURACY is set (.ci/run sets it, outside the -race run).
func TestReadmeAccuracy(t *testing.T) {
	if os.Getenv("BWSIM_README_ACCURACY") == "" {
		t.Skip("set BWSIM_README_ACCURACY=1 to check README's accuracy table against bwsim validate")
	}
	isolateConfig(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := accuracyRow.FindAllStringSubmatch(string(readme), -1)
	if len(rows) < 2 {
		t.Fatalf("README.md: found %d accuracy rows, want one per measurement file (at least 2)", len(rows))
	}
	for _, r := range rows {
		file, points, median, maxErr := r[1], r[2], r[3], r[4]
		t.Run(file, func(t *testing.T) {
			out, err := execute(t, "validate", "--measured", "../../"+file, "--json", "--no-plot")
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			var res struct {
				Summary struct {
					Points         int     `json:"points"`
					MedianAbsError float64 `json:"median_abs_error"`
					MaxAbsError    float64 `json:"max_abs_error"`
				} `json:"summary"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("validate --json: %v", err)
			}
			s := res.Summary
			got := []string{strconv.Itoa(s.Points), fmt.Sprintf("%.1f", 100*s.MedianAbsError), fmt.Sprintf("%.1f", 100*s.MaxAbsError)}
			want := []string{points, median, maxErr}
			for i, name := range []string{"points", "median |error| %", "max |error| %"} {
				if got[i] != want[i] {
					t.Errorf("README states %s %s, bwsim validate gives %s", name, want[i], got[i])
				}
			}
		})
	}
}

// Command gore2 answers regexp questions with Go's own regexp package, for the differential
// test of cargohold's ~= filters (tests/test_filters_go.py).
//
// It reads one JSON object from stdin, {"cases": [{"pattern": b64, "inputs": [b64, ...]}]},
// compiles each pattern with regexp.Compile (as containerd's filters do), and writes
// {"go": version, "results": [{"valid": bool, "error": string, "matches": [bool, ...]}]},
// where each match is regexp.MatchString on the input (an unanchored search).
// Patterns and inputs travel as base64 ([]byte) so that any byte sequence survives JSON.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
)

type testCase struct {
	Pattern []byte   `json:"pattern"`
	Inputs  [][]byte `json:"inputs"`
}

type result struct {
	Valid   bool   `json:"valid"`
	Error   string `json:"error"`
	Matches []bool `json:"matches"`
}

func main() {
	var request struct {
		Cases []testCase `json:"cases"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&request); err != nil {
		fmt.Fprintln(os.Stderr, "gore2: bad request:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(request.Cases))
	for _, c := range request.Cases {
		re, err := regexp.Compile(string(c.Pattern))
		if err != nil {
			results = append(results, result{Error: err.Error(), Matches: []bool{}})
			continue
		}
		matches := make([]bool, 0, len(c.Inputs))
		for _, input := range c.Inputs {
			matches = append(matches, re.MatchString(string(input)))
		}
		results = append(results, result{Valid: true, Matches: matches})
	}
	reply := map[string]interface{}{"go": runtime.Version(), "results": results}
	if err := json.NewEncoder(os.Stdout).Encode(reply); err != nil {
		fmt.Fprintln(os.Stderr, "gore2: cannot write the reply:", err)
		os.Exit(2)
	}
}

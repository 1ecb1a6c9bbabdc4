// Package gosuite drives `cargohold serve` with containerd's own Go code: the proxy content
// store (content/proxy) on a gRPC connection to the plugin's unix socket.
//
// TestContentSuite runs containerd's ContentSuite (content/testsuite) against it, and TestStress
// races writers with listings and aborts. Both read their settings from the environment (see
// harness_test.go); tests/plugin/test_content_suite.py and tests/plugin/test_stress.py build the
// test binary in GOPATH mode from Debian's golang-github-containerd-containerd-dev and run it.
package gosuite

//go:build !race

package gateway

// raceDetector is true under -race, which slows the gateway several
// times over: timing bounds are then not checked, only what was answered.
const raceDetector = false

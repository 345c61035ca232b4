// Package testsupport holds what the tests of several packages share and
// would otherwise each write again: a buffer that a goroutine writes while
// the test reads it, golden-file comparison with an -update flag, and a
// lock held on a table to simulate a stuck database, and the skip of a
// test that needs root. Only _test.go files
// import it.
package testsupport

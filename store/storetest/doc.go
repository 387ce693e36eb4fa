// Package storetest starts a throwaway PostgreSQL server for tests: a
// cluster made with initdb in a temporary directory, listening on a unix
// socket there only (no TCP port to collide with), one fresh database per
// test. Tests of the store and of the gateway on PostgreSQL use it.
//
// PostgreSQL refuses to run as root; run as root (as the tests and CI
// are), the server runs as the "postgres" user that Debian's package
// creates, or as a system user made for the purpose if there is none.
package storetest

//go:build !race

package gateway_test

// stalledClients is how many clients TestStalledClientsAreClosed opens.
const stalledClients = 3000

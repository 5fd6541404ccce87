//go:build race

package gateway_test

// stalledClients is how many clients TestStalledClientsAreClosed opens
// under the race detector, which multiplies the cost of each; without it,
// 3,000.
const stalledClients = 500

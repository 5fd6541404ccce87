package names

// Names of user sign-in: what the trigger API tells every gateway about
// signed-in users.

// UserTerminateSubject carries one app's terminate_connections requests to
// every gateway (core NATS); the body is the user id.
func UserTerminateSubject(appID string) string {
	return Prefix + ".users.terminate." + EncodeToken(appID)
}

// UserTerminateSubjects is the subject filter a gateway listens on for every
// app's terminate_connections requests.
func UserTerminateSubjects() string { return Prefix + ".users.terminate.*" }

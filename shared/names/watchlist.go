package names

// PresenceOnlineSubject takes requests for which watched users are online
// (queue group PresenceQueueGroup).
const PresenceOnlineSubject = Prefix + ".presence.online"

// UserStatusSubject carries an app's users coming online and going offline.
func UserStatusSubject(appID string) string {
	return Prefix + ".presence.users." + EncodeToken(appID)
}

// UserStateKey is a signed-in user's key in PresenceStateBucket.
func UserStateKey(appID, userID string) string {
	return UserStateKeyPrefix + EncodeToken(appID) + "." + EncodeToken(userID)
}

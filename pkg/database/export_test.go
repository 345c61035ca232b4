package database

// ForgetSecrets empties the secrets RememberSecrets collected, so that one
// test's passwords do not mask text in another's.
func ForgetSecrets() {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	secrets.list, secrets.seen = nil, nil
}

package sandbox

// MayRead: commands run as attunectl's own user on Windows; what it can
// read, they can.
func (u User) MayRead(path string, exec bool) bool { return true }

package workers

// Name is the worker's name.
func (r *Registration) Name() string { return r.name }

// Host is the host the worker advertises.
func (r *Registration) Host() string { return r.host }

// Instance is this process's identity.
func (r *Registration) Instance() Instance { return r.inst }

// Capabilities returns a copy of the capabilities this instance advertises.
func (r *Registration) Capabilities() Capabilities {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneCapabilities(r.caps)
}

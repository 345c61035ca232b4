package cli

// SetStdinTTY makes the App treat its stdin as a terminal or not, whatever it is.
func (a *App) SetStdinTTY(tty bool) { a.stdinTTY = &tty }

// SetStdoutTTY makes the App treat its stdout as a terminal or not.
func (a *App) SetStdoutTTY(tty bool) { a.stdoutTTY = &tty }

// SetStderrTTY makes the App treat its stderr as a terminal or not.
func (a *App) SetStderrTTY(tty bool) { a.stderrTTY = &tty }

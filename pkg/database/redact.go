package database

import (
	"regexp"
)

var (
	// userinfo in a URL: scheme://user:secret@host
	urlPassRe = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):([^@\s]*)@`)
	// password=secret in a key=value DSN or a URL query
	kvPassRe = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)`)
)

// Redact hides every password in s: the user-info password of URLs and
// password= in DSNs and query strings. It is applied to every error and log
// line that may carry a connection string.
func Redact(s string) string {
	s = urlPassRe.ReplaceAllString(s, "$1:xxxxx@")
	return kvPassRe.ReplaceAllString(s, "${1}xxxxx")
}

// RedactError returns err with every password removed from its message;
// the chain is kept for errors.Is/As.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := Redact(err.Error())
	if msg == err.Error() {
		return err
	}
	return WithMessage(msg, err)
}

package database

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// Mask replaces a password wherever attunectl prints or logs text.
const Mask = "xxxxx"

// minSecretLen is the shortest remembered spelling of a password that
// Redact replaces wherever it occurs (see standsOut). A shorter one would
// mangle every message it happens to occur in; it is still hidden where it
// stands in a URL or DSN.
const minSecretLen = 4

var (
	// userinfo in a URL: scheme://user:secret@host. The password runs to
	// the last '@' before the path or a blank, so postgres://u:p@SECRET@h
	// hides "p@SECRET", as a reader of that URL would mean it.
	urlPassRe = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):([^/\s]*)@`)
	// password=secret in a key=value DSN or a URL query: quoted with
	// backslash escapes, or unquoted up to a blank (backslash escapes a
	// blank, as libpq and pgx read it). '&' does not end it: in a DSN
	// "password=ab&SECRET" is one password.
	kvPassRe = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s\\]|\\.)+\\?)`)
)

// secrets are the spellings of passwords this process knows of
// (RememberSecrets) that Redact may replace wherever they occur, longest
// first, so that a password containing another is replaced whole.
var secrets struct {
	mu   sync.RWMutex
	list []string
	seen map[string]bool
}

// RememberSecrets finds every password in connString — a postgres:// URL or
// a keyword/value DSN — the way pgx reads it (pgconn.ParseConfig: the URL's
// userinfo, password= and sslpassword= query parameters or keywords, quoted
// values), together with the spellings it has in the text (percent-encoded,
// quoted, backslash-escaped) and what a reader of a malformed string would
// take for a password (everything up to the last '@' of the authority, the
// rest of a password= value after a '&').
//
// Redact masks passwords by parsing the URLs and DSNs it finds in a text.
// A remembered spelling is also masked on its own, wherever it occurs, only
// when it cannot be ordinary text: it has at least four characters and one
// that is neither a letter, a digit nor one of "-._~" (a password typed
// into a URL unencoded, whose pieces a parser may print apart from the
// URL). A password that is a plain word ("attune", "worker") is hidden
// where it stands as a password and leaves every other word of a message
// as it was: "run `attunectl migrate up`" stays readable.
//
// Call it with every connection string the process will use, before using
// it: the configured database URL at load time, and any URL a command is
// given.
func RememberSecrets(connString string) {
	found := SecretsIn(connString)
	if len(found) == 0 {
		return
	}
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	if secrets.seen == nil {
		secrets.seen = map[string]bool{}
	}
	for _, s := range found {
		if !standsOut(s) || secrets.seen[s] {
			continue
		}
		secrets.seen[s] = true
		secrets.list = append(secrets.list, s)
	}
	sort.SliceStable(secrets.list, func(i, j int) bool { return len(secrets.list[i]) > len(secrets.list[j]) })
}

// standsOut reports whether a spelling of a password can be masked wherever
// it occurs without rewriting ordinary text: at least minSecretLen
// characters, one of them outside the letters, digits and "-._~" that
// words, identifiers and host names are made of.
func standsOut(s string) bool {
	if len(s) < minSecretLen {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-._~", r):
		default:
			return true
		}
	}
	return false
}

// SecretsIn lists the passwords of connString and their spellings (see
// RememberSecrets), without remembering them.
func SecretsIn(connString string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
		if d, err := url.QueryUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
		if e := url.QueryEscape(s); e != s {
			out = append(out, e)
		}
		if e := url.PathEscape(s); e != s {
			out = append(out, e)
		}
		if e := (&url.URL{User: url.UserPassword("u", s)}).String(); strings.HasPrefix(e, "//u:") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(e, "//u:"), "@"))
		}
		if u := unescapeKeywordValue(s); u != s {
			out = append(out, u)
		}
		// As Go quotes it (%q) and as JSON escapes it.
		if q := strconv.Quote(s); q[1:len(q)-1] != s {
			out = append(out, q[1:len(q)-1])
		}
		if j, err := json.Marshal(s); err == nil && string(j[1:len(j)-1]) != s {
			out = append(out, string(j[1:len(j)-1]))
		}
	}
	if cfg, err := pgconn.ParseConfig(connString); err == nil {
		add(cfg.Password)
	}
	if p, ok := cutScheme(connString); ok {
		urlSecrets(p, add)
	} else {
		for _, v := range keywordPasswords(connString) {
			add(v)
		}
	}
	return out
}

// checkUserinfo refuses a URL whose authority holds more than one '@': pgx
// ends the user info at the first one and would take the rest of the
// password for the host name, and print it in its errors. The message
// names the fault, never the URL.
func checkUserinfo(connString string) error {
	rest, ok := cutScheme(connString)
	if !ok {
		return nil
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.Count(rest, "@") > 1 {
		return errors.New("parsing database URL: more than one '@' before the host: percent-encode an '@' in the user name or password as %40 (check --database-url or ATTUNE__DATABASE__URL)")
	}
	return nil
}

func cutScheme(s string) (string, bool) {
	for _, prefix := range []string{"postgresql://", "postgres://"} {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			return rest, true
		}
	}
	return "", false
}

// urlSecrets adds the passwords of a URL without its scheme.
func urlSecrets(p string, add func(string)) {
	// pgx's reading: the userinfo ends at the first '@' before any '/'.
	if i := strings.IndexAny(p, "@/"); i >= 0 && p[i] == '@' {
		if _, pw, ok := strings.Cut(p[:i], ":"); ok {
			add(pw)
		}
	}
	// A reader's: the userinfo ends at the last '@' of the authority, and
	// an '@' or '/' stranded after it (unencoded in the password) means the
	// password runs to the last '@' of all. Every part between the
	// userinfo's first '@' and its last is a secret too: pgx takes it for
	// the host and may print it alone.
	authority := p
	if i := strings.IndexAny(p, "/?#"); i >= 0 {
		authority = p[:i]
	}
	userinfo := ""
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo = authority[:i]
	} else if _, port, ok := strings.Cut(authority, ":"); ok && strings.Trim(port, "0123456789,") != "" {
		// host:port with a port that is no number: the '/' was the
		// password's (postgres://u:pass/word@host).
		if i := strings.LastIndexByte(p, '@'); i >= 0 {
			userinfo = p[:i]
		}
	}
	if userinfo != "" {
		if _, pw, ok := strings.Cut(userinfo, ":"); ok {
			add(pw)
			for _, part := range strings.FieldsFunc(pw, func(r rune) bool { return r == '@' || r == '/' || r == '?' }) {
				add(part)
			}
		}
	}
	// Query parameters password= and sslpassword=, and the elements after
	// one that have no '=' (an unencoded '&' split the password there).
	q := p
	if i := strings.IndexByte(p, '?'); i >= 0 {
		q = p[i+1:]
	} else {
		return
	}
	if i := strings.IndexByte(q, '#'); i >= 0 {
		q = q[:i]
	}
	pairs := strings.Split(q, "&")
	for i := 0; i < len(pairs); i++ {
		k, v, ok := strings.Cut(pairs[i], "=")
		if !ok {
			continue
		}
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if k = strings.ToLower(k); k != "password" && k != "sslpassword" {
			continue
		}
		add(v)
		joined := v
		for j := i + 1; j < len(pairs) && !strings.Contains(pairs[j], "="); j++ {
			add(pairs[j])
			joined += "&" + pairs[j]
			add(joined)
		}
	}
}

// keywordPasswords returns the raw and unescaped values of password= and
// sslpassword= in a keyword/value DSN, read as pgx reads them (quoted values
// with backslash escapes; unquoted ones end at a blank). A malformed DSN
// gives what could be read before the fault.
func keywordPasswords(s string) []string {
	var out []string
	const blanks = " \t\n\r\v\f"
	s = strings.TrimLeft(s, blanks)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.Trim(s[:eq], blanks))
		s = strings.TrimLeft(s[eq+1:], blanks)
		var raw string
		if len(s) > 0 && s[0] == '\'' {
			end := 1
			for ; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			raw = s[1:min(end, len(s))]
			s = s[min(end+1, len(s)):]
		} else {
			end := 0
			for ; end < len(s) && !strings.ContainsRune(blanks, rune(s[end])); end++ {
				if s[end] == '\\' {
					end++
				}
			}
			raw = s[:min(end, len(s))]
			s = s[min(end, len(s)):]
		}
		s = strings.TrimLeft(s, blanks)
		if i := strings.LastIndexAny(key, blanks); i >= 0 {
			key = key[i+1:]
		}
		if key == "password" || key == "sslpassword" {
			out = append(out, raw, unescapeKeywordValue(raw))
		}
	}
	return out
}

// unescapeKeywordValue drops each backslash and keeps what follows it, as
// libpq and pgx read keyword/value values.
func unescapeKeywordValue(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			if i == len(s) {
				break
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Redact hides every password in s: the user-info password and password=
// query values of the URLs in it and the password= values of keyword/value
// DSNs, found by parsing them; and each remembered spelling that stands out
// from ordinary text (see RememberSecrets), wherever it occurs. It is
// applied to every error and log line that may carry a connection string.
func Redact(s string) string {
	secrets.mu.RLock()
	for _, sec := range secrets.list {
		// Replacing can join the text around a password into another
		// occurrence of it; a few rounds settle any input.
		for range 4 {
			if !strings.Contains(s, sec) {
				break
			}
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	secrets.mu.RUnlock()

	var b strings.Builder
	last := 0
	for _, loc := range urlTokenRe.FindAllStringIndex(s, -1) {
		b.WriteString(kvPassRe.ReplaceAllString(s[last:loc[0]], "${1}"+Mask))
		b.WriteString(redactURL(s[loc[0]:loc[1]]))
		last = loc[1]
	}
	b.WriteString(kvPassRe.ReplaceAllString(s[last:], "${1}"+Mask))
	return b.String()
}

// urlTokenRe finds URLs in free text: a scheme, "://", and no blank.
var urlTokenRe = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://\S+`)

// redactURL masks the user-info password of one URL (up to the last '@'
// before the path) and its password= and sslpassword= query values, with
// the elements after such a value that have no '=' (an unencoded '&' in
// the password split it there).
func redactURL(u string) string {
	u = urlPassRe.ReplaceAllString(u, "$1:"+Mask+"@")
	q := strings.IndexByte(u, '?')
	if q < 0 {
		return u
	}
	pairs := strings.Split(u[q+1:], "&")
	masking := false
	for i, pair := range pairs {
		k, _, ok := strings.Cut(pair, "=")
		if !ok {
			if masking {
				pairs[i] = Mask
			}
			continue
		}
		masking = false
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if lk := strings.ToLower(k); lk == "password" || lk == "sslpassword" {
			pairs[i] = pair[:strings.IndexByte(pair, '=')+1] + Mask
			masking = true
		}
	}
	return u[:q+1] + strings.Join(pairs, "&")
}

// RedactAttr is a slog.HandlerOptions.ReplaceAttr that passes every string
// and error attribute, the message included, through Redact.
func RedactAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if r := Redact(a.Value.String()); r != a.Value.String() {
			a.Value = slog.StringValue(r)
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			a.Value = slog.StringValue(Redact(v.Error()))
		case interface{ String() string }:
			a.Value = slog.StringValue(Redact(v.String()))
		}
	}
	return a
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

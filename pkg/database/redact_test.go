package database_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/attune-automation/attunectl/pkg/config"
	"github.com/attune-automation/attunectl/pkg/database"
	"github.com/attune-automation/attunectl/pkg/dbtest"
	"github.com/attune-automation/attunectl/pkg/embeddedpg"
)

// secretsMu serializes the tests that use the process-wide secret list.
var secretsMu sync.Mutex

func TestRedactFindsThePasswordAsPgxReadsIt(t *testing.T) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	defer database.ForgetSecrets()
	tests := []struct {
		conn   string
		secret []string // must not survive Redact of the connection string or of an error naming it
		keep   []string // must survive
	}{
		{"host=h user=u password=ab&SECRET dbname=d", []string{"SECRET", "ab&"}, []string{"host=h", "dbname=d"}},
		{"postgres://u:p@SECRET@db.example/d", []string{"SECRET"}, []string{"db.example/d", "postgres://u:"}},
		{"postgres://u@db.example/d?sslmode=disable&password=ab&SECRET", []string{"SECRET", "ab&"}, []string{"sslmode=disable"}},
		{`host=h password='a b\'c @:/&\\%' dbname=d`, []string{`a b\'c`, `a b'c`, "@:/&"}, []string{"dbname=d"}},
		{`host=h password=a\ bcdef dbname=d`, []string{"bcdef", `a\ b`}, []string{"dbname=d"}},
		{"postgres://u:" + url.QueryEscape(`p@ss:w/o&r\d %x`) + "@h:5432/d", []string{"p%40ss", "w%2Fo", "%25x"}, []string{"h:5432/d"}},
		{"postgres://u:pass/word?x@h:5432/d", []string{"pass/word"}, []string{"h:5432/d"}},
		{"postgres://u:hunter2@h/d?password=Other-Secret", []string{"hunter2", "Other-Secret"}, []string{"h/d"}},
		{"host=h sslpassword=KeySecret1 password=pw-in-dsn", []string{"KeySecret1", "pw-in-dsn"}, []string{"host=h"}},
	}
	for _, tt := range tests {
		database.RememberSecrets(tt.conn)
		for _, text := range []string{tt.conn, "failed: " + tt.conn + ": refused", fmt.Sprintf("%q", tt.conn)} {
			got := database.Redact(text)
			for _, s := range tt.secret {
				if strings.Contains(got, s) {
					t.Errorf("Redact(%s) = %s: shows %q", text, got, s)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(got, k) {
					t.Errorf("Redact(%s) = %s: lost %q", text, got, k)
				}
			}
		}
	}
	// pgx reads u:p@SECRET@host as password "p" and host "SECRET@host";
	// Open refuses such a URL before pgx reads it, naming neither part.
	_, err := database.Open(context.Background(), database.Options{URL: "postgres://u:p@SECRET@db.example/d"})
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "%40") {
		t.Errorf("Open of a URL with two '@' before the host: %v", err)
	}
}

// TestRedactKeepsOrdinaryWords: a password that is also an ordinary word is
// masked where it stands as a password and nowhere else, so the messages
// around it stay readable.
func TestRedactKeepsOrdinaryWords(t *testing.T) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	defer database.ForgetSecrets()
	messages := []string{
		"database not migrated: run `attunectl migrate up`",
		"migrate down --to 0 drops table worker and every sensor row",
		"role postgres has no password; connect as x or y",
		"x",
	}
	for _, pw := range []string{"attune", "worker", "postgres", "x"} {
		database.ForgetSecrets()
		url := "postgres://attune:" + pw + "@db.example:5432/attune?sslmode=disable"
		dsn := "host=db.example user=attune password=" + pw + " dbname=attune"
		database.RememberSecrets(url)
		database.RememberSecrets(dsn)
		for _, m := range messages {
			if got := database.Redact(m); got != m {
				t.Errorf("password %q: Redact(%q) = %q, want it unchanged", pw, m, got)
			}
		}
		wants := map[string]string{
			url: "postgres://attune:" + database.Mask + "@db.example:5432/attune?sslmode=disable",
			dsn: "host=db.example user=attune password=" + database.Mask + " dbname=attune",
		}
		for conn, want := range wants {
			if got := database.Redact("connecting to " + conn + ": refused"); got != "connecting to "+want+": refused" {
				t.Errorf("password %q: Redact = %q, want %q", pw, got, "connecting to "+want+": refused")
			}
		}
	}
}

// connForms are the ways an operator writes a password into a connection
// string to the address addr: URL user info, percent-encoded or as typed;
// a URL query parameter; a DSN value, quoted or backslash-escaped.
func connForms(pw, addr string) map[string]string {
	host, port, _ := net.SplitHostPort(addr)
	dsnQuoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw)
	var esc strings.Builder
	for _, r := range pw {
		if strings.ContainsRune(" \t\n\r\v\f\\'", r) {
			esc.WriteByte('\\')
		}
		esc.WriteRune(r)
	}
	return map[string]string{
		"url userinfo":          "postgres://" + url.UserPassword("attune", pw).String() + "@" + addr + "/attune?sslmode=disable",
		"url userinfo as typed": "postgres://attune:" + pw + "@" + addr + "/attune?sslmode=disable",
		"url query":             "postgres://attune@" + addr + "/attune?sslmode=disable&password=" + url.QueryEscape(pw),
		"url query as typed":    "postgres://attune@" + addr + "/attune?sslmode=disable&password=" + pw,
		"dsn quoted":            fmt.Sprintf("host=%s port=%s user=attune dbname=attune sslmode=disable password='%s'", host, port, dsnQuoted),
		"dsn escaped":           fmt.Sprintf("host=%s port=%s user=attune password=%s dbname=attune sslmode=disable", host, port, esc.String()),
	}
}

// spellings are the ways pw could show in output: as it is, and escaped by
// Go's %q, by JSON and by URL encoding.
func spellings(pw string) []string {
	out := []string{pw}
	if q := strconv.Quote(pw); q[1:len(q)-1] != pw {
		out = append(out, q[1:len(q)-1])
	}
	if j, _ := json.Marshal(pw); string(j[1:len(j)-1]) != pw {
		out = append(out, string(j[1:len(j)-1]))
	}
	for _, e := range []string{url.QueryEscape(pw), url.PathEscape(pw)} {
		if e != pw {
			out = append(out, e)
		}
	}
	return out
}

// checkNoPassword runs every output a password can reach — the redacted
// connection string, the error of a failed connect, `config view`'s YAML
// and JSON, and text and JSON log lines — and fails when pw shows in any.
func checkNoPassword(t *testing.T, pw, addr string) {
	t.Helper()
	for form, conn := range connForms(pw, addr) {
		database.RememberSecrets(conn) // what loading the configuration does
		outputs := map[string]string{"Redact": database.Redact(conn)}

		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := database.Open(ctx, database.Options{URL: conn, ConnectTimeout: 2 * time.Second})
		cancel()
		if err == nil {
			t.Fatalf("%s: connecting to %s succeeded", form, addr)
		}
		outputs["connect error"] = database.Redact(err.Error())

		cfg, _, err := config.Load(config.LoadOptions{Environ: []string{"ATTUNE__DATABASE__URL=" + conn}})
		if err != nil {
			outputs["config error"] = database.Redact(err.Error())
		} else {
			view := *cfg
			view.Database.URL = database.Redact(view.Database.URL)
			y, _ := yaml.Marshal(view)
			j, _ := json.Marshal(view)
			outputs["config view yaml"], outputs["config view json"] = string(y), string(j)
		}

		var logs bytes.Buffer
		opts := &slog.HandlerOptions{ReplaceAttr: database.RedactAttr}
		for _, h := range []slog.Handler{slog.NewTextHandler(&logs, opts), slog.NewJSONHandler(&logs, opts)} {
			slog.New(h).Error("connecting to "+conn+" failed", "url", conn, "error", fmt.Errorf("wrapped: %s", conn))
		}
		outputs["log lines"] = logs.String()

		for what, out := range outputs {
			for _, sp := range spellings(pw) {
				if strings.Contains(out, sp) {
					t.Errorf("password %q (%s) shows as %q in the %s:\n%s", pw, form, sp, what, out)
				}
			}
		}
	}
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// passwordCorpus are the passwords that leaked before parsing-based
// redaction, and the characters that make URLs and DSNs hard.
var passwordCorpus = []string{
	"ab&SECRET",
	"p@SECRET",
	"pa ss word",
	`back\slash`,
	"per%cent%41",
	"co:lo:n",
	"sla/sh/ed",
	"que?ry#frag",
	"quo'te\"d",
	`@ : / & \ % all`,
	"tab\tnew\nline",
	"ünïcödé-密码",
	"password=nested",
	"=leading-equals",
	"trailing-backslash\\",
}

// marked makes a fuzzed password distinctive: a one-letter password
// cannot be proved absent from a message.
func marked(s string) string { return "Pw" + s + "!9" }

func TestRedactPasswordCorpus(t *testing.T) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	defer database.ForgetSecrets()
	addr := refusedAddr(t)
	for _, pw := range passwordCorpus {
		checkNoPassword(t, marked(pw), addr)
	}
}

func TestRedactGeneratedPasswords(t *testing.T) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	defer database.ForgetSecrets()
	addr := refusedAddr(t)
	const alphabet = "abcXYZ019 @:/&\\%'\"?#=+,;!~*()[]{}<>|^`$\t"
	rng := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		b := make([]byte, 4+rng.IntN(20))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		checkNoPassword(t, marked(string(b)), addr)
	}
}

func FuzzRedactPassword(f *testing.F) {
	for _, pw := range passwordCorpus {
		f.Add(pw)
	}
	addr := refusedAddr(f)
	f.Fuzz(func(t *testing.T, pw string) {
		if strings.ContainsRune(pw, 0) { // no connection string can carry a NUL: pgx refuses it
			pw = strings.ReplaceAll(pw, "\x00", "")
		}
		secretsMu.Lock()
		defer secretsMu.Unlock()
		defer database.ForgetSecrets()
		checkNoPassword(t, marked(pw), addr)
	})
}

// TestRememberSecretsKeepsOrdinaryParts: an '@' in a query value after a
// numeric port strands no password; the port and path stay readable.
func TestRememberSecretsKeepsOrdinaryParts(t *testing.T) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	defer database.ForgetSecrets()
	database.RememberSecrets("postgres://db.example:5432/attune?options=-c%20x@y&sslmode=disable")
	if got := database.Redact("dial tcp db.example:5432: refused (database attune)"); got != "dial tcp db.example:5432: refused (database attune)" {
		t.Errorf("Redact masked ordinary text: %s", got)
	}
}

// TestRedactAuthenticationFailure sends every corpus password, in every
// form, to a real server that checks it (scram-sha-256 over loopback TCP)
// and fails: the error attunectl prints names the failure, never the
// password.
func TestRedactAuthenticationFailure(t *testing.T) {
	srv := dbtest.NewServer(t, embeddedpg.Options{ListenAddress: "127.0.0.1"})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port()))
	secretsMu.Lock()
	defer secretsMu.Unlock()
	defer database.ForgetSecrets()
	for _, pw := range passwordCorpus {
		pw = marked(pw)
		for form, conn := range connForms(pw, addr) {
			database.RememberSecrets(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := database.Open(ctx, database.Options{URL: conn, ConnectTimeout: 5 * time.Second})
			cancel()
			if err == nil {
				t.Fatalf("%s: a wrong password was accepted", form)
			}
			msg := database.Redact(err.Error())
			// A password typed into a URL unencoded may break it (pgx then
			// reads part of it as the host); the encoded forms reach the server.
			if !strings.HasSuffix(form, "as typed") && !strings.Contains(msg, "authentication failed") {
				t.Errorf("%s: %s", form, msg)
			}
			for _, sp := range spellings(pw) {
				if strings.Contains(msg, sp) {
					t.Errorf("password %q (%s) shows as %q: %s", pw, form, sp, msg)
				}
			}
		}
	}
}

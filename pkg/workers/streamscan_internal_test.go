package workers

import (
	"context"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/attune-automation/attunectl/pkg/dbtest"
)

// TestEpochSecondsIsExtract holds epochSeconds to PostgreSQL's own
// extract(epoch FROM …)::float8 on intervals of every part and sign,
// including those too large for microseconds in an int64.
func TestEpochSecondsIsExtract(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	rows, err := db.Pool.Query(context.Background(), `
		SELECT iv, extract(epoch FROM iv)::float8 FROM unnest($1::interval[]) AS iv`,
		[]string{"0", "90 seconds", "0.000001 seconds", "-0.000001 seconds", "1 day", "-1 day", "1 mon", "11 mons", "13 mons",
			"-13 mons", "1 year 2 mons 3 days 04:05:06.789012", "-1 mons +2 days -00:00:00.000001", "0.1 seconds", "0.3 seconds",
			"2562047788 hours", "-2562047788 hours", "178000000 years", "-178000000 years 12 days", "1000000 days 0.123456 seconds",
			"3 seconds", "90.7 seconds"})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var iv pgtype.Interval
		var want float64
		if err := rows.Scan(&iv, &want); err != nil {
			t.Fatal(err)
		}
		if got := epochSeconds(iv); got != want {
			t.Errorf("epochSeconds(%+v) = %v, PostgreSQL says %v", iv, got, want)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 21 {
		t.Fatalf("%d intervals compared: %v", n, err)
	}
}

// TestJSONNumberIsTheCast holds jsonNumber to the statement it replaces,
// CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::float8 END, on
// what jsonb prints; where that cast fails the statement (a number beyond
// float8), jsonNumber gives 0.
func TestJSONNumberIsTheCast(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	for _, v := range []string{`30`, `-1.5`, `1e2`, `0.1`, `123456789012345678901234567890`, `1e-7`, `"30"`, `null`, `true`, `[1]`, `{"a": 1}`, `-0`} {
		var text string
		var want *float64
		if err := db.Pool.QueryRow(ctx, `SELECT $1::jsonb::text, CASE WHEN jsonb_typeof($1::jsonb) = 'number' THEN ($1::jsonb #>> '{}')::float8 END`, v).Scan(&text, &want); err != nil {
			t.Fatal(err)
		}
		w := 0.0
		if want != nil {
			w = *want
		}
		if got := jsonNumber([]byte(text)); got != w || math.Signbit(got) != math.Signbit(w) {
			t.Errorf("jsonNumber(%s) = %v, the cast gives %v", text, got, w)
		}
	}
	var text string
	if err := db.Pool.QueryRow(ctx, `SELECT '1e400'::jsonb::text`).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT ('1e400'::jsonb #>> '{}')::float8`); err == nil {
		t.Fatal("PostgreSQL cast 1e400 to float8: the test's premise is wrong")
	}
	if got := jsonNumber([]byte(text)); got != 0 {
		t.Errorf("jsonNumber(1e400) = %v, want 0", got)
	}
}

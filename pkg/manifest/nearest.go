package manifest

import "strings"

// Nearest is the candidate closest to word by edit distance (compared in
// lower case), when it is near enough to be a typo of it: at most
// maxDistance edits, or len(word)/3+1 when maxDistance is 0. Ties go to the
// earlier candidate. "" when none is.
func Nearest(word string, candidates []string, maxDistance int) string {
	if maxDistance <= 0 {
		maxDistance = len(word)/3 + 1
	}
	best, bestD := "", maxDistance+1
	w := strings.ToLower(word)
	for _, c := range candidates {
		if d := editDistance(w, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b in bytes; inputs
// longer than 64 bytes are far from everything (no typo is that long).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

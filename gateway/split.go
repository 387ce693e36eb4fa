package gateway

import (
	"fmt"
	"unicode/utf8"
)

// minSplitSize is the smallest chunk size SplitText accepts: one chunk must
// be able to hold any single character (utf8.UTFMax bytes).
const minSplitSize = utf8.UTFMax

// SplitText cuts text into chunks of at most max bytes of UTF-8 each, so that
// joining the chunks gives back text exactly: nothing is added, dropped or
// trimmed. The limit counts the text's own bytes, before the protocol escapes
// them; whoever sets it leaves room for the escaping (a comma becomes %2c).
//
// A chunk never ends inside a UTF-8 sequence nor between the CR and LF of a
// line break. Within the last quarter of a chunk it prefers to end after a
// line break, then after a space, so that a reader sees whole lines and words
// where that costs little; otherwise the chunk is filled up.
//
// Empty text gives no chunks. A max smaller than utf8.UTFMax is an error,
// since some characters would fit in no chunk.
func SplitText(text string, max int) ([]string, error) {
	if max < minSplitSize {
		return nil, fmt.Errorf("split text: chunk size %d is below the minimum of %d bytes", max, minSplitSize)
	}
	var chunks []string
	for len(text) > max {
		n := splitPoint(text, max)
		chunks = append(chunks, text[:n])
		text = text[n:]
	}
	if text != "" {
		chunks = append(chunks, text)
	}
	return chunks, nil
}

// splitPoint returns the length of the next chunk of text, which is longer
// than max: 0 < n <= max, on a character boundary, not between CR and LF.
func splitPoint(text string, max int) int {
	// The last character boundary at or before max. An invalid byte counts
	// as a character of its own, so text that is not UTF-8 still splits.
	n := max
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	// A continuation byte run longer than UTFMax is not UTF-8: cut anywhere.
	if n == 0 || max-n >= utf8.UTFMax {
		n = max
	}
	if text[n-1] == '\r' && text[n] == '\n' {
		// Keep the line break whole: CR goes with its LF into the next chunk,
		// unless it is all the chunk would hold, then LF joins it (max >= 4).
		if n >= 2 {
			n--
		} else {
			n = 2
		}
	}
	// Prefer a line break, then a space, in the last quarter of the window.
	low := n - n/4
	for _, want := range []byte{'\n', ' '} {
		for i := n; i > low && i > 0; i-- {
			if text[i-1] == want {
				return i
			}
		}
	}
	return n
}

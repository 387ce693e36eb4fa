package gateway

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitTextExamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"empty", "", 10, nil},
		{"fits", "hello", 5, []string{"hello"}},
		{"ascii fill", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		// 你 is three bytes: a 4-byte chunk holds one, never a piece of two.
		{"chinese", "你好世界", 4, []string{"你", "好", "世", "界"}},
		{"chinese 7", "你好世界", 7, []string{"你好", "世界"}},
		{"emoji", "a😀b", 4, []string{"a", "😀", "b"}},
		// The CR stays with its LF rather than ending the first chunk.
		{"crlf", "abc\r\ndef", 4, []string{"abc", "\r\nde", "f"}},
		{"prefer newline", "abcdef\nghijk", 8, []string{"abcdef\n", "ghijk"}},
		{"newline before space", "abcdefghi\nj klmno", 12, []string{"abcdefghi\n", "j klmno"}},
		{"prefer space", "aaaaaa bbbbbbbb", 8, []string{"aaaaaa ", "bbbbbbbb"}},
		// A space early in the window is not worth a short chunk.
		{"space too early", "a bcdefghijk", 8, []string{"a bcdefg", "hijk"}},
		{"protocol chars", "a,b&UN=9%2c", 4, []string{"a,b&", "UN=9", "%2c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitText(tc.text, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SplitText(%q, %d) = %q, want %q", tc.text, tc.max, got, tc.want)
			}
		})
	}
}

func TestSplitTextRejectsTinySize(t *testing.T) {
	for _, max := range []int{-1, 0, 1, 3} {
		if _, err := SplitText("abc", max); err == nil {
			t.Errorf("SplitText with max %d: no error", max)
		}
	}
}

// checkSplit asserts the properties every split must have.
func checkSplit(t *testing.T, text string, max int) {
	t.Helper()
	chunks, err := SplitText(text, max)
	if err != nil {
		t.Fatalf("SplitText(%q, %d): %v", text, max, err)
	}
	if got := strings.Join(chunks, ""); got != text {
		t.Fatalf("SplitText(%q, %d): joined chunks %q differ from the text", text, max, got)
	}
	valid := utf8.ValidString(text)
	for i, c := range chunks {
		if c == "" || len(c) > max {
			t.Fatalf("SplitText(%q, %d): chunk %d has %d bytes", text, max, i, len(c))
		}
		if valid && !utf8.ValidString(c) {
			t.Fatalf("SplitText(%q, %d): chunk %d %q is not valid UTF-8", text, max, i, c)
		}
		if strings.HasSuffix(c, "\r") && i+1 < len(chunks) && strings.HasPrefix(chunks[i+1], "\n") {
			t.Fatalf("SplitText(%q, %d): CRLF split between chunks %d and %d", text, max, i, i+1)
		}
	}
	// Chunks are filled: a split happens only when the text did not fit.
	if len(text) <= max && len(chunks) > 1 {
		t.Fatalf("SplitText(%q, %d): %d chunks for text that fits", text, max, len(chunks))
	}
}

func TestSplitTextProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []string{"a", "b", " ", "\r\n", "\n", "\r", ",", "&", "%", "=", "你", "好", "é", "😀", "\u0301"}
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		for n := rng.Intn(80); n > 0; n-- {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		checkSplit(t, b.String(), minSplitSize+rng.Intn(20))
	}
}

func TestSplitTextLargeChinese(t *testing.T) {
	text := strings.Repeat("中文消息，带逗号,和&UN=999&MG=x以及%2c\r\n", 300) // ~12 KB
	const max = 1000
	chunks, err := SplitText(text, max)
	if err != nil {
		t.Fatal(err)
	}
	checkSplit(t, text, max)
	// Filling up to the window, minus at most a quarter for a nicer break.
	if want := len(text)/max + 1; len(chunks) > want*4/3+1 {
		t.Errorf("%d chunks for %d bytes at %d per chunk: chunks are not being filled", len(chunks), len(text), max)
	}
	for i, c := range chunks[:len(chunks)-1] {
		if !strings.HasSuffix(c, "\n") {
			t.Errorf("chunk %d does not end at a line break although lines are short: %q", i, c[len(c)-10:])
		}
	}
}

func FuzzSplitText(f *testing.F) {
	f.Add("你好,世界\r\n&UN=1", 4)
	f.Add("\xff\xfe\x80\x80\x80\x80\x80abc", 5)
	f.Fuzz(func(t *testing.T, text string, max int) {
		if max < minSplitSize || max > 1<<16 {
			if _, err := SplitText(text, max); max < minSplitSize && err == nil {
				t.Fatalf("max %d accepted", max)
			}
			return
		}
		checkSplit(t, text, max)
	})
}

func BenchmarkSplitText(b *testing.B) {
	text := strings.Repeat("中文消息，带逗号,和&UN=999&MG=x以及%2c\r\n", 300) // ~12 KB
	b.SetBytes(int64(len(text)))
	for i := 0; i < b.N; i++ {
		if _, err := SplitText(text, DefaultMaxMessageBytes); err != nil {
			b.Fatal(err)
		}
	}
}

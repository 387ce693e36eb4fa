package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeVars are the example values README.md shows in its configuration
// snippets; the templates' placeholders are filled with them for comparing.
var readmeVars = map[string]string{
	"HOST":             "example.org",
	"COMPONENT_DOMAIN": "qq.example.org",
	"COMPONENT_SECRET": "change-this-secret",
	"COMPONENT_PORT":   "5347",
}

// serverTemplates are the configurations the suite runs with; every snippet
// they mark must be quoted in the README.
var serverTemplates = []string{"testdata/prosody.cfg.lua", "testdata/ejabberd.yml"}

// readmeMarker introduces a quoted snippet in README.md:
//
//	<!-- snippet:prosody-component from e2e/testdata/prosody.cfg.lua -->
//	```lua
//	...
//	```
var readmeMarker = regexp.MustCompile(`^<!-- snippet:([a-z0-9-]+) from (\S+) -->$`)

// readmeSnippets returns the fenced blocks that follow snippet markers, by
// name, with the file each claims to come from.
func readmeSnippets(text string) (map[string][2]string, error) {
	lines := strings.Split(text, "\n")
	out := map[string][2]string{}
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j == len(lines) || !strings.HasPrefix(lines[j], "```") {
			return nil, fmt.Errorf("README.md line %d: snippet %q is not followed by a ``` block", i+1, m[1])
		}
		var block []string
		k := j + 1
		for ; k < len(lines) && !strings.HasPrefix(lines[k], "```"); k++ {
			block = append(block, lines[k])
		}
		if k == len(lines) {
			return nil, fmt.Errorf("README.md line %d: the block of snippet %q never closes", j+1, m[1])
		}
		if _, dup := out[m[1]]; dup {
			return nil, fmt.Errorf("README.md line %d: snippet %q quoted twice", i+1, m[1])
		}
		out[m[1]] = [2]string{m[2], strings.Join(block, "\n")}
		i = k
	}
	return out, nil
}

// TestReadmeSnippets proves that the server configuration README.md tells
// an administrator to add is the configuration the end-to-end suite (and
// make demo) actually runs with.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	quoted, err := readmeSnippets(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tmpl := range serverTemplates {
		data, err := os.ReadFile(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		marked, err := snippets(string(data))
		if err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		if len(marked) == 0 {
			t.Errorf("%s marks no snippet; the README's setup instructions would be untested", tmpl)
		}
		for name, text := range marked {
			seen[name] = true
			want, err := renderSome(text, readmeVars)
			if err != nil {
				t.Errorf("%s snippet %s: %v", tmpl, name, err)
				continue
			}
			q, ok := quoted[name]
			switch {
			case !ok:
				t.Errorf("README.md does not quote snippet %s of %s; add\n<!-- snippet:%s from e2e/%s -->\n```\n%s\n```", name, tmpl, name, tmpl, want)
			case q[0] != filepath.ToSlash(filepath.Join("e2e", tmpl)):
				t.Errorf("README.md says snippet %s is from %s; it is from e2e/%s", name, q[0], tmpl)
			case q[1] != want:
				t.Errorf("README.md snippet %s differs from e2e/%s.\nREADME:\n%s\nsuite (with the README's example values):\n%s", name, tmpl, q[1], want)
			}
		}
	}
	for name, q := range quoted {
		if !seen[name] {
			t.Errorf("README.md quotes snippet %s from %s, which no template marks", name, q[0])
		}
	}
}

// renderSome is render for a part of a template: values it does not use
// are fine, placeholders without a value are not.
func renderSome(text string, vars map[string]string) (string, error) {
	some := map[string]string{}
	for _, m := range placeholder.FindAllString(text, -1) {
		name := strings.Trim(m, "@")
		if v, ok := vars[name]; ok {
			some[name] = v
		}
	}
	return render(text, some)
}

func TestRender(t *testing.T) {
	got, err := render("a @X@ b @Y_2@ @X@", map[string]string{"X": "1", "Y_2": "two"})
	if err != nil || got != "a 1 b two 1" {
		t.Errorf("render = %q, %v; want %q", got, err, "a 1 b two 1")
	}
	if _, err := render("a @X@ @Z@", map[string]string{"X": "1"}); err == nil || !strings.Contains(err.Error(), "@Z@") {
		t.Errorf("render with @Z@ unfilled: err = %v, want one naming @Z@", err)
	}
	if _, err := render("a @X@", map[string]string{"X": "1", "GONE": "2"}); err == nil || !strings.Contains(err.Error(), "GONE") {
		t.Errorf("render with an unused value: err = %v, want one naming GONE", err)
	}
}

func TestSnippets(t *testing.T) {
	got, err := snippets("x\n-- snippet:a begin\nA1\n\tA2\n-- snippet:a end\n  # snippet:b begin\nB\n  # snippet:b end\n")
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != "A1\n\tA2" || got["b"] != "B" || len(got) != 2 {
		t.Errorf("snippets = %q", got)
	}
	for _, bad := range []string{
		"-- snippet:a begin\n",
		"-- snippet:a end\n",
		"-- snippet:a begin\n-- snippet:b begin\n-- snippet:b end\n-- snippet:a end\n",
		"-- snippet:a begin\n-- snippet:a end\n-- snippet:a begin\n-- snippet:a end\n",
	} {
		if _, err := snippets(bad); err == nil {
			t.Errorf("snippets(%q) = nil error", bad)
		}
	}
}

func TestReadmeSnippetsParser(t *testing.T) {
	got, err := readmeSnippets("text\n<!-- snippet:p from e2e/testdata/x -->\n\n```lua\nline 1\n\tline 2\n```\nmore")
	if err != nil {
		t.Fatal(err)
	}
	if got["p"] != [2]string{"e2e/testdata/x", "line 1\n\tline 2"} {
		t.Errorf("readmeSnippets = %q", got)
	}
	if _, err := readmeSnippets("<!-- snippet:p from x -->\nno block\n"); err == nil {
		t.Error("a marker without a block: nil error")
	}
	if _, err := readmeSnippets("<!-- snippet:p from x -->\n```\nopen\n"); err == nil {
		t.Error("an unclosed block: nil error")
	}
}

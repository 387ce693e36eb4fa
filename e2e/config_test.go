package e2e

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// The server configurations live in testdata as templates with @NAME@
// placeholders, so that this suite (Go), scripts/demo.sh (sed) and the
// README (quoted snippets) share one text.
var placeholder = regexp.MustCompile(`@[A-Z][A-Z0-9_]*@`)

// render fills every @NAME@ of text from vars. A placeholder without a value
// is an error, and so is a value for a placeholder the text does not have,
// so that a renamed placeholder cannot go unnoticed.
func render(text string, vars map[string]string) (string, error) {
	used := map[string]bool{}
	var missing []string
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		name := strings.Trim(m, "@")
		v, ok := vars[name]
		if !ok {
			missing = append(missing, m)
			return m
		}
		used[name] = true
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for %s", strings.Join(missing, ", "))
	}
	var unused []string
	for k := range vars {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return "", fmt.Errorf("the template has no placeholder for %s", strings.Join(unused, ", "))
	}
	return out, nil
}

// renderFile renders a template file into path, readable only by its owner
// (it holds the component secret).
func renderFile(tmpl, path string, vars map[string]string) error {
	data, err := os.ReadFile(tmpl)
	if err != nil {
		return err
	}
	out, err := render(string(data), vars)
	if err != nil {
		return fmt.Errorf("%s: %w", tmpl, err)
	}
	return os.WriteFile(path, []byte(out), 0o600)
}

// snippetMarker matches the lines that delimit a README snippet in a
// template, in Lua ("-- snippet:NAME begin") or YAML ("# snippet:NAME end").
var snippetMarker = regexp.MustCompile(`^\s*(?:--|#) snippet:([a-z0-9-]+) (begin|end)\s*$`)

// snippets returns the text between each pair of snippet markers of a
// template, by name, markers excluded.
func snippets(text string) (map[string]string, error) {
	out := map[string]string{}
	var name string
	var lines []string
	for i, line := range strings.Split(text, "\n") {
		m := snippetMarker.FindStringSubmatch(line)
		switch {
		case m == nil:
			if name != "" {
				lines = append(lines, line)
			}
		case m[2] == "begin":
			if name != "" {
				return nil, fmt.Errorf("line %d: snippet %q begins inside %q", i+1, m[1], name)
			}
			if _, dup := out[m[1]]; dup {
				return nil, fmt.Errorf("line %d: snippet %q twice", i+1, m[1])
			}
			name, lines = m[1], nil
		default:
			if m[1] != name {
				return nil, fmt.Errorf("line %d: snippet %q ends, but %q is open", i+1, m[1], name)
			}
			out[name] = strings.Join(lines, "\n")
			name = ""
		}
	}
	if name != "" {
		return nil, fmt.Errorf("snippet %q never ends", name)
	}
	return out, nil
}

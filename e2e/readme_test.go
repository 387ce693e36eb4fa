package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"qqxmpp/xmppcomp/xmpptest"
)

// readmeValues are the example values README.md shows in its configuration
// snippets; the templates are filled with them for comparing. The roster
// privilege is on so that its snippets are rendered too.
var readmeValues = xmpptest.ConfigValues{
	Domain:          "example.org",
	ComponentDomain: "qq.example.org",
	Secret:          "change-this-secret",
	ComponentPort:   5347,
	ClientPort:      5222,
	APIPort:         5280,
	Dir:             "/var/lib/xmpp",
	RosterPrivilege: true,
}

// serverTemplates are the configurations every test server runs with
// (xmpptest's), by kind, and the files they are in; every snippet they
// mark must be quoted in the README.
var serverTemplates = []struct{ kind, file, text string }{
	{xmpptest.Prosody, "xmppcomp/xmpptest/prosody.cfg.lua.tmpl", xmpptest.ProsodyConfigTemplate},
	{xmpptest.Ejabberd, "xmppcomp/xmpptest/ejabberd.yml.tmpl", xmpptest.EjabberdConfigTemplate},
}

// readmeMarker introduces a quoted snippet in README.md:
//
//	<!-- snippet:prosody-component from xmppcomp/xmpptest/prosody.cfg.lua.tmpl -->
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
// an administrator to add is the configuration the tests, the end-to-end
// suite and make demo actually run with.
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
		// The README names the file; it must be the template in use.
		if file, err := os.ReadFile("../" + tmpl.file); err != nil || string(file) != tmpl.text {
			t.Errorf("%s is not the %s template xmpptest runs with (%v)", tmpl.file, tmpl.kind, err)
		}
		text, err := xmpptest.RenderConfig(tmpl.kind, readmeValues)
		if err != nil {
			t.Fatal(err)
		}
		marked, err := snippets(string(text))
		if err != nil {
			t.Fatalf("%s: %v", tmpl.file, err)
		}
		if len(marked) == 0 {
			t.Errorf("%s marks no snippet; the README's setup instructions would be untested", tmpl.file)
		}
		for name, want := range marked {
			seen[name] = true
			q, ok := quoted[name]
			switch {
			case !ok:
				t.Errorf("README.md does not quote snippet %s of %s; add\n<!-- snippet:%s from %s -->\n```\n%s\n```", name, tmpl.file, name, tmpl.file, want)
			case q[0] != tmpl.file:
				t.Errorf("README.md says snippet %s is from %s; it is from %s: write <!-- snippet:%s from %s -->", name, q[0], tmpl.file, name, tmpl.file)
			case q[1] != want:
				t.Errorf("README.md snippet %s differs from %s.\nREADME:\n%s\ntemplate (with the README's example values):\n%s", name, tmpl.file, q[1], want)
			}
		}
	}
	for name, q := range quoted {
		if !seen[name] {
			t.Errorf("README.md quotes snippet %s from %s, which no template marks", name, q[0])
		}
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

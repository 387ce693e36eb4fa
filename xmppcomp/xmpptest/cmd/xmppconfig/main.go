package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"qqxmpp/xmppcomp/xmpptest"
)

// secretEnv holds the component secret.
const secretEnv = "XMPPCONFIG_SECRET"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run prints the configuration and returns the exit code: 0, or 2 for a
// usage error.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xmppconfig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", xmpptest.Prosody, "prosody or ejabberd")
	var v xmpptest.ConfigValues
	fs.StringVar(&v.Dir, "dir", "", "the server's directory: pid file, data, log")
	fs.StringVar(&v.Domain, "domain", "localhost", "the server's virtual host")
	fs.StringVar(&v.ComponentDomain, "component", "", "the component's domain")
	fs.IntVar(&v.ClientPort, "c2s-port", 0, "client port on 127.0.0.1")
	fs.IntVar(&v.ComponentPort, "component-port", 0, "component port on 127.0.0.1")
	fs.IntVar(&v.APIPort, "api-port", 0, "ejabberd: HTTP API port on 127.0.0.1")
	fs.StringVar(&v.LogLevel, "log-level", "info", "info or debug")
	fs.StringVar(&v.CertFile, "cert", "", "Prosody: certificate (PEM) to offer STARTTLS with")
	fs.StringVar(&v.KeyFile, "key", "", "Prosody: its key (PEM)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xmppconfig: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	v.Secret = getenv(secretEnv)
	if v.Secret == "" {
		fmt.Fprintf(stderr, "xmppconfig: set the component secret in %s\n", secretEnv)
		return 2
	}
	text, err := xmpptest.RenderConfig(*kind, v)
	if err != nil {
		fmt.Fprintf(stderr, "xmppconfig: %v\n", err)
		return 2
	}
	if _, err := stdout.Write(text); err != nil {
		fmt.Fprintf(stderr, "xmppconfig: %v\n", err)
		return 1
	}
	return 0
}

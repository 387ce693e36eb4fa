package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// ErrNoPostgres: no PostgreSQL server programs on this machine.
var ErrNoPostgres = errors.New("storetest: PostgreSQL is not installed (Debian: apt-get install postgresql; scripts/deps.sh test)")

// User is the server's superuser the DSNs name; its password is random.
const User = "qqtest"

// fallbackUser runs the server when root runs the tests and there is no
// "postgres" user.
const fallbackUser = "qqxmpp-pgtest"

// Server is a running PostgreSQL server in a temporary directory.
type Server struct {
	dir      string   // holds data/, the socket and the log
	bin      string   // the directory of initdb, pg_ctl and postgres
	runAs    []string // prefix that runs a command as the server's user; nil when not root
	password string
	admin    *sql.DB // to the "postgres" database, for CREATE DATABASE
	next     atomic.Int64
}

// BinDir finds the PostgreSQL server programs: those of version 15 if
// installed (what Debian 12 ships), else of the newest installed version.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		return "", ErrNoPostgres
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if version(d) == 15 {
			return filepath.Dir(d), nil
		}
	}
	return filepath.Dir(dirs[0]), nil
}

// version is the major version in /usr/lib/postgresql/N/bin/initdb.
func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Options vary the server.
type Options struct {
	// Durable keeps PostgreSQL's fsync on, for benchmarks whose figures
	// should be those of a real server. Off, a commit does not wait for
	// the disk, and CREATE DATABASE for each test is fast.
	Durable bool
}

// Start creates a cluster in a new temporary directory and starts its
// server. Stop it with Stop, which also removes the directory.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "qqxmpp-pg-")
	if err != nil {
		return nil, fmt.Errorf("storetest: %w", err)
	}
	s := &Server{dir: dir, bin: bin, password: randomHex()}
	if err := s.start(ctx, o); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, o Options) error {
	if err := s.setOwner(); err != nil {
		return err
	}
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := s.writeOwned(pwfile, s.password+"\n"); err != nil {
		return err
	}
	if err := s.run(ctx, "initdb", "-D", s.dataDir(), "-U", User, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return err
	}
	os.Remove(pwfile)
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c max_connections=300", s.dir)
	if !o.Durable {
		opts += " -c fsync=off -c full_page_writes=off"
	}
	if err := s.run(ctx, "pg_ctl", "-D", s.dataDir(), "-l", filepath.Join(s.dir, "server.log"), "-w", "-o", opts, "start"); err != nil {
		return err
	}
	db, err := sql.Open("pgx", s.DSNWithPassword("postgres"))
	if err != nil {
		return fmt.Errorf("storetest: %w", err)
	}
	s.admin = db
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("storetest: connect to the new server: %w", err)
	}
	return nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// setOwner makes the directory the server's user's when root runs the
// tests: PostgreSQL refuses to run as root.
func (s *Server) setOwner() error {
	if os.Geteuid() != 0 {
		return nil
	}
	name, err := serverUser()
	if err != nil {
		return err
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("storetest: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(s.dir, uid, gid); err != nil {
		return fmt.Errorf("storetest: %w", err)
	}
	s.runAs = []string{"runuser", "-u", name, "--"}
	return nil
}

// serverUser is the user that runs the server when root runs the tests.
func serverUser() (string, error) {
	if _, err := user.Lookup("postgres"); err == nil {
		return "postgres", nil
	}
	if _, err := user.Lookup(fallbackUser); err == nil {
		return fallbackUser, nil
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", fallbackUser).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("storetest: no postgres user, and useradd %s: %v: %s", fallbackUser, err, bytes.TrimSpace(out))
	}
	return fallbackUser, nil
}

// writeOwned writes a file only the server's user may read.
func (s *Server) writeOwned(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("storetest: %w", err)
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("storetest: %w", err)
	}
	if st, ok := statOwner(fi); ok {
		if err := os.Chown(path, st.uid, st.gid); err != nil {
			return fmt.Errorf("storetest: %w", err)
		}
	}
	return nil
}

// run runs one of the server's programs as the server's user.
func (s *Server) run(ctx context.Context, prog string, args ...string) error {
	argv := append(append(append([]string{}, s.runAs...), filepath.Join(s.bin, prog)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("storetest: %s: %v\n%s\n%s", prog, err, bytes.TrimSpace(out), bytes.TrimSpace(log))
	}
	return nil
}

// SocketDir is the directory of the server's unix socket: the host of
// its DSNs.
func (s *Server) SocketDir() string { return s.dir }

// Password is the password of User.
func (s *Server) Password() string { return s.password }

// DSN is the connection string of database db, without the password.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s user=%s dbname=%s sslmode=disable", s.dir, User, db)
}

// DSNWithPassword is DSN with the password in it.
func (s *Server) DSNWithPassword(db string) string {
	return s.DSN(db) + " password=" + s.password
}

// NewDatabase creates an empty database and returns its name.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d", s.next.Add(1))
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("storetest: create database %s: %w", name, err)
	}
	return name, nil
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() error {
	if s.admin != nil {
		s.admin.Close()
	}
	var err error
	if _, serr := os.Stat(filepath.Join(s.dataDir(), "postmaster.pid")); serr == nil {
		err = s.run(context.Background(), "pg_ctl", "-D", s.dataDir(), "-m", "immediate", "-w", "stop")
	}
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = fmt.Errorf("storetest: %w", rerr)
	}
	return err
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRegistrationLifecycle(t *testing.T) { eachDriver(t, testRegistrationLifecycle) }

func testRegistrationLifecycle(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)

	if _, err := s.Registration(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("Registration of a stranger: %v, want ErrNotFound", err)
	}
	if err := s.PutRegistration(ctx, Registration{JID: alice, UIN: 10001, PasswordMD5: md5a}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Registration(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if r.JID != alice || r.UIN != 10001 || r.PasswordMD5 != md5a || r.Created.IsZero() || !r.Created.Equal(r.Updated) {
		t.Errorf("Registration = %+v", r)
	}
	byUIN, err := s.RegistrationByUIN(ctx, 10001)
	if err != nil || !reflect.DeepEqual(byUIN, r) {
		t.Errorf("RegistrationByUIN = %+v, %v; want %+v", byUIN, err, r)
	}
	if _, err := s.RegistrationByUIN(ctx, 99999); !errors.Is(err, ErrNotFound) {
		t.Errorf("RegistrationByUIN(unknown): %v, want ErrNotFound", err)
	}

	// The same JID registering again replaces number and password.
	if err := s.PutRegistration(ctx, Registration{JID: alice, UIN: 10002, PasswordMD5: md5b}); err != nil {
		t.Fatal(err)
	}
	r2, err := s.Registration(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if r2.UIN != 10002 || r2.PasswordMD5 != md5b || !r2.Created.Equal(r.Created) || !r2.Updated.After(r.Updated) {
		t.Errorf("after re-registration %+v (before %+v)", r2, r)
	}
	if _, err := s.RegistrationByUIN(ctx, 10001); !errors.Is(err, ErrNotFound) {
		t.Errorf("old number still registered: %v", err)
	}
}

func TestRegistrationsListsAllByJID(t *testing.T) { eachDriver(t, testRegistrationsListsAllByJID) }

func testRegistrationsListsAllByJID(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	if all, err := s.Registrations(ctx); err != nil || len(all) != 0 {
		t.Errorf("Registrations of an empty store = %v, %v", all, err)
	}
	mustRegister(t, s, "carol@example.org", 3)
	mustRegister(t, s, bob, 2)
	mustRegister(t, s, alice, 1)
	all, err := s.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range all {
		got = append(got, r.JID)
	}
	if want := []string{alice, bob, "carol@example.org"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Registrations = %v, want %v", got, want)
	}
}

func TestRegistrationConflict(t *testing.T) { eachDriver(t, testRegistrationConflict) }

func testRegistrationConflict(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)

	err := s.PutRegistration(ctx, Registration{JID: bob, UIN: 10001, PasswordMD5: md5b})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second owner: %v, want ErrConflict", err)
	}
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.UIN != 10001 {
		t.Errorf("ConflictError = %+v", ce)
	}
	if strings.Contains(err.Error(), alice) {
		t.Errorf("conflict error %q reveals the owner", err)
	}
	if _, err := s.Registration(ctx, bob); !errors.Is(err, ErrNotFound) {
		t.Errorf("loser got registered: %v", err)
	}
	if r, _ := s.Registration(ctx, alice); r.PasswordMD5 != md5a {
		t.Errorf("owner's password changed to %q", r.PasswordMD5)
	}
	// Moving alice to another number frees 10001 for bob.
	mustRegister(t, s, alice, 10002)
	mustRegister(t, s, bob, 10001)
}

func TestRegistrationValidation(t *testing.T) { eachDriver(t, testRegistrationValidation) }

func testRegistrationValidation(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	const plaintext = "hunter2-my-secret-password-12345" // 32 characters, not hex
	for name, r := range map[string]Registration{
		"plaintext password": {JID: alice, UIN: 1, PasswordMD5: plaintext},
		"uppercase md5":      {JID: alice, UIN: 1, PasswordMD5: strings.ToUpper(md5a)},
		"short md5":          {JID: alice, UIN: 1, PasswordMD5: md5a[:31]},
		"long md5":           {JID: alice, UIN: 1, PasswordMD5: md5a + "0"},
		"empty md5":          {JID: alice, UIN: 1},
		"empty jid":          {UIN: 1, PasswordMD5: md5a},
		"full jid":           {JID: alice + "/laptop", UIN: 1, PasswordMD5: md5a},
		"invalid utf-8 jid":  {JID: "\xff@example.org", UIN: 1, PasswordMD5: md5a},
		"huge jid":           {JID: strings.Repeat("a", 4000), UIN: 1, PasswordMD5: md5a},
		"zero uin":           {JID: alice, UIN: 0, PasswordMD5: md5a},
		"negative uin":       {JID: alice, UIN: -5, PasswordMD5: md5a},
	} {
		err := s.PutRegistration(ctx, r)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutRegistration = %v, want ErrInvalid", name, err)
		}
		if err != nil && strings.Contains(err.Error(), plaintext) {
			t.Errorf("%s: error %q repeats the password", name, err)
		}
	}
	if all, _ := s.Registrations(ctx); len(all) != 0 {
		t.Errorf("invalid registrations were stored: %+v", all)
	}
	mustRegister(t, s, alice, 1)
	// The schema itself refuses what validation would have caught.
	if _, err := s.db.ExecContext(ctx, `UPDATE registrations SET password_md5 = ?`, plaintext); err == nil {
		t.Error("the password_md5 column accepted a plaintext password")
	}
}

// Deleting a user removes their contacts and queued items, and nobody
// else's.
func TestDeleteUserCascades(t *testing.T) { eachDriver(t, testDeleteUserCascades) }

func testDeleteUserCascades(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)
	for _, jid := range []string{alice, bob} {
		if err := s.PutContacts(ctx, jid, []Contact{{UIN: 1, Sub: Both}, {UIN: 2, Sub: PendingIn}}); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []Direction{ToXMPP, ToQQ} {
			if _, err := s.Enqueue(ctx, Item{Dir: dir, JID: jid, Peer: 1, Text: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.DeleteUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteUser: %v, want ErrNotFound", err)
	}
	if _, err := s.Registration(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("registration survived: %v", err)
	}
	if cs, _ := s.Contacts(ctx, alice); len(cs) != 0 {
		t.Errorf("contacts survived: %+v", cs)
	}
	for _, dir := range []Direction{ToXMPP, ToQQ} {
		if items, _ := s.Pending(ctx, alice, dir); len(items) != 0 {
			t.Errorf("queue %v survived: %+v", dir, items)
		}
		if items, _ := s.Pending(ctx, bob, dir); len(items) != 1 {
			t.Errorf("bob's queue %v = %+v, want 1 item", dir, items)
		}
	}
	if cs, _ := s.Contacts(ctx, bob); len(cs) != 2 {
		t.Errorf("bob's contacts = %+v, want 2", cs)
	}
	if n := queueLen(t, s); n != 2 {
		t.Errorf("%d items queued, want bob's 2", n)
	}
	// The number is free again.
	mustRegister(t, s, "carol@example.org", 10001)
}

// Another process registers the QQ number after PutRegistration looked for
// an owner and before it inserts: it still answers with a ConflictError.
// On SQLite the other transaction's write lock makes PutRegistration wait
// and see the owner; on PostgreSQL its insert waits on the other's row and
// then violates the UNIQUE uin, which is the same conflict.
func TestRegistrationConflictWithAnotherProcess(t *testing.T) {
	eachDriver(t, testRegistrationConflictWithAnotherProcess)
}

func testRegistrationConflictWithAnotherProcess(t *testing.T, d testDriver) {
	ctx := context.Background()
	db := d.newDB(t)
	var stores [2]*Store
	for i := range stores {
		s, err := d.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	s, other := stores[0], stores[1]
	tx, err := other.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, other.q(`INSERT INTO registrations (jid, uin, password_md5, created, updated)
		VALUES (?, ?, ?, 0, 0)`), bob, 10001, md5b); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.PutRegistration(ctx, Registration{JID: alice, UIN: 10001, PasswordMD5: md5a}) }()
	if d.name == "postgres" {
		waitForLockWait(t, other)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.UIN != 10001 {
		t.Errorf("PutRegistration = %v, want a ConflictError for 10001", err)
	}
	if _, err := s.Registration(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("the loser got registered: %v", err)
	}
}

// waitForLockWait returns once a PostgreSQL backend waits for a lock.
func waitForLockWait(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := s.db.QueryRowContext(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no PutRegistration came to wait for the other insert")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

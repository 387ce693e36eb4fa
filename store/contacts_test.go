package store

import (
	"context"
	"errors"
	"testing"
)

func TestContacts(t *testing.T) { eachDriver(t, testContacts) }

func testContacts(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)

	if cs, err := s.Contacts(ctx, alice); err != nil || len(cs) != 0 {
		t.Errorf("Contacts of a new user = %v, %v", cs, err)
	}
	if _, err := s.Contact(ctx, alice, 30003); !errors.Is(err, ErrNotFound) {
		t.Errorf("Contact(unknown) = %v, want ErrNotFound", err)
	}
	for _, c := range []Contact{
		{UIN: 30003, Nick: "Carol", Face: 1, Sub: PendingOut},
		{UIN: 20002, Nick: "鲍勃", Face: 2, Sub: Both},
	} {
		if err := s.PutContact(ctx, alice, c); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := s.Contacts(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].UIN != 20002 || cs[1].UIN != 30003 {
		t.Fatalf("Contacts = %+v, want 20002 then 30003", cs)
	}
	if c := cs[0]; c.Nick != "鲍勃" || c.Face != 2 || c.Sub != Both || c.Updated.IsZero() {
		t.Errorf("contact 20002 = %+v", c)
	}
	first := cs[1]

	// Upsert replaces every field and moves Updated.
	if err := s.PutContact(ctx, alice, Contact{UIN: 30003, Nick: "Caroline", Face: 9, Sub: Both}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Contact(ctx, alice, 30003)
	if err != nil || c.Nick != "Caroline" || c.Face != 9 || c.Sub != Both || !c.Updated.After(first.Updated) {
		t.Errorf("after upsert %+v, %v (before %+v)", c, err, first)
	}

	if err := s.DeleteContact(ctx, alice, 30003); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContact(ctx, alice, 30003); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteContact = %v, want ErrNotFound", err)
	}
	if cs, _ := s.Contacts(ctx, alice); len(cs) != 1 || cs[0].UIN != 20002 {
		t.Errorf("after delete Contacts = %+v", cs)
	}
}

// Contacts are per user: the same QQ number in two lists are two contacts.
func TestContactsArePerUser(t *testing.T) { eachDriver(t, testContactsArePerUser) }

func testContactsArePerUser(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)
	if err := s.PutContact(ctx, alice, Contact{UIN: 5, Nick: "for alice", Sub: Both}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContact(ctx, bob, Contact{UIN: 5, Nick: "for bob", Sub: PendingIn}); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Contact(ctx, alice, 5)
	b, _ := s.Contact(ctx, bob, 5)
	if a.Nick != "for alice" || a.Sub != Both || b.Nick != "for bob" || b.Sub != PendingIn {
		t.Errorf("alice's %+v, bob's %+v", a, b)
	}
	if err := s.DeleteContact(ctx, bob, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Contact(ctx, alice, 5); err != nil {
		t.Errorf("deleting bob's contact removed alice's: %v", err)
	}
}

func TestPutContactsImport(t *testing.T) { eachDriver(t, testPutContactsImport) }

func testPutContactsImport(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	if err := s.PutContact(ctx, alice, Contact{UIN: 7, Nick: "kept", Sub: PendingOut}); err != nil {
		t.Fatal(err)
	}
	var list []Contact
	for uin := int64(100); uin > 0; uin -= 10 {
		list = append(list, Contact{UIN: uin, Nick: "n", Sub: Both})
	}
	if err := s.PutContacts(ctx, alice, list); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Contacts(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != len(list)+1 {
		t.Fatalf("%d contacts, want %d", len(cs), len(list)+1)
	}
	for i := 1; i < len(cs); i++ {
		if cs[i-1].UIN >= cs[i].UIN {
			t.Fatalf("Contacts not ordered by UIN: %+v", cs)
		}
	}
	if c, _ := s.Contact(ctx, alice, 7); c.Nick != "kept" {
		t.Errorf("a contact missing from the import was changed: %+v", c)
	}
	if err := s.PutContacts(ctx, alice, nil); err != nil {
		t.Errorf("empty import: %v", err)
	}

	// One bad contact and nothing is written.
	bad := []Contact{{UIN: 500, Sub: Both}, {UIN: 501, Sub: Subscription(9)}}
	if err := s.PutContacts(ctx, alice, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("import with a bad contact = %v, want ErrInvalid", err)
	}
	if _, err := s.Contact(ctx, alice, 500); !errors.Is(err, ErrNotFound) {
		t.Errorf("part of a refused import was written: %v", err)
	}
}

func TestContactsNeedRegistration(t *testing.T) { eachDriver(t, testContactsNeedRegistration) }

func testContactsNeedRegistration(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	if err := s.PutContact(ctx, bob, Contact{UIN: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutContact for a stranger = %v, want ErrNotFound", err)
	}
	if err := s.PutContacts(ctx, bob, []Contact{{UIN: 1}, {UIN: 2}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutContacts for a stranger = %v, want ErrNotFound", err)
	}
	if cs, err := s.Contacts(ctx, bob); err != nil || len(cs) != 0 {
		t.Errorf("Contacts of a stranger = %v, %v", cs, err)
	}
}

func TestContactValidation(t *testing.T) { eachDriver(t, testContactValidation) }

func testContactValidation(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	for name, c := range map[string]Contact{
		"zero uin":         {UIN: 0},
		"negative uin":     {UIN: -1},
		"bad subscription": {UIN: 1, Sub: -1},
		"big subscription": {UIN: 1, Sub: Both + 1},
	} {
		if err := s.PutContact(ctx, alice, c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutContact = %v, want ErrInvalid", name, err)
		}
	}
	if err := s.PutContact(ctx, "", Contact{UIN: 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty jid: %v, want ErrInvalid", err)
	}
}

func TestSubscriptionString(t *testing.T) {
	for s, want := range map[Subscription]string{
		None: "none", PendingOut: "pending-out", PendingIn: "pending-in", Both: "both", 9: "Subscription(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("Subscription(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

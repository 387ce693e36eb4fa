package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"qqxmpp/store"
)

// A message fetched from QQ is queued before anything else, delivered, and
// only then removed: a crash in between loses nothing.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	err = s.PutRegistration(ctx, store.Registration{
		JID:         "alice@example.org",
		UIN:         10001,
		PasswordMD5: "5f4dcc3b5aa765d61d8327deb882cf99", // md5("password")
	})
	if err != nil {
		log.Fatal(err)
	}
	err = s.PutRegistration(ctx, store.Registration{
		JID: "mallory@example.org", UIN: 10001, PasswordMD5: "5f4dcc3b5aa765d61d8327deb882cf99",
	})
	fmt.Println(err)

	ids, err := s.EnqueueBatch(ctx, []store.Item{
		{Dir: store.ToXMPP, JID: "alice@example.org", Peer: 20002, Text: "hi", MsgType: 9},
		{Dir: store.ToXMPP, JID: "alice@example.org", Peer: 20002, Text: "are you there?", MsgType: 9},
	})
	if err != nil {
		log.Fatal(err)
	}

	items, _ := s.Pending(ctx, "alice@example.org", store.ToXMPP)
	for _, it := range items {
		fmt.Printf("deliver %d from %d (type %d): %s\n", it.ID, it.Peer, it.MsgType, it.Text)
		if err := s.Remove(ctx, it.ID); err != nil { // handed to the XMPP server
			log.Fatal(err)
		}
	}
	fmt.Println("ids:", ids)
	// Output:
	// store: register mallory@example.org as 10001: qq number 10001 is already registered by another user
	// deliver 1 from 20002 (type 9): hi
	// deliver 2 from 20002 (type 9): are you there?
	// ids: [1 2]
}

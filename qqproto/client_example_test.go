package qqproto_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
)

// A session logs in with the MD5 of its password, sends a message, and
// polls for what arrived: here, against the emulator's demo world, whose
// account 10010 echoes every message back.
func ExampleClient() {
	sim := qqsim.New(qqsim.Options{})
	for _, a := range qqsim.DemoWorld() {
		if err := sim.AddAccount(a); err != nil {
			fmt.Println("world:", err)
			return
		}
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()

	// One transport for every session of the process.
	tr := qqproto.NewTransport()
	c := qqproto.NewClient(10001, qqproto.Options{Server: srv.URL, Transport: tr})
	ctx := context.Background()

	session, err := c.Login(ctx, qqproto.PasswordMD5("demo"))
	if err != nil {
		fmt.Println("login:", err)
		return
	}
	fmt.Println("logged in; poll every", session.PollInterval)

	if err := c.SendMessage(ctx, 10010, "你好, echo & co."); err != nil {
		fmt.Println("send:", err)
		return
	}
	msgs, err := c.Messages(ctx)
	if err != nil {
		fmt.Println("poll:", err)
		return
	}
	for _, m := range msgs {
		fmt.Printf("from %d: %s\n", m.From, m.Text)
	}
	if err := c.Logout(ctx); err != nil {
		fmt.Println("logout:", err)
	}
	// Output:
	// logged in; poll every 1m0s
	// from 10010: 你好, echo & co.
}

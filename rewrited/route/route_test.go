package route

import (
	"bufio"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"

	"example.org/popspool/shared/config"
)

func header(t *testing.T, s string) textproto.Header {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(strings.ReplaceAll(s, "\n", "\r\n") + "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func multi(mod func(*config.Routing)) *config.Config {
	r := config.Routing{LocalDomains: []string{"contoso.local"}, EnvelopeHeaders: config.DefaultEnvelopeHeaders,
		Aliases: map[string]string{"bob@contoso.local": "robert@contoso.local", "@old.contoso.local": "postmaster@contoso.local"}}
	if mod != nil {
		mod(&r)
	}
	return &config.Config{Account: []config.Account{{Name: "shop", Routing: config.Routing{DeliverTo: []string{"x@y.z"}, EnvelopeHeaders: config.DefaultEnvelopeHeaders}}, {Name: "box", Routing: r}}}
}

const ours = "Received: from pop.isp.example\n\tby host (popspool fetchd; account box; uidl 1) with POP3S id X;\n\tMon, 23 Nov 2026 10:00:00 +0000\nX-Popspool-Account: box\n"

func TestMultiDrop(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name, head string
		mod        func(*config.Routing)
		want       string // recipients joined by ","; "!" = NoRecipientError
		unrouted   bool
	}{
		{"delivered-to first", "Delivered-To: alice@contoso.local\nX-Original-To: carol@contoso.local\nTo: dave@contoso.local\n", nil, "alice@contoso.local", false},
		{"isp mailbox skipped, next header", "Delivered-To: catchall@isp.example\nX-Original-To: carol@contoso.local\n", nil, "carol@contoso.local", false},
		{"several delivered-to: topmost by default", "Delivered-To: alice@contoso.local\nDelivered-To: carol@contoso.local\n", nil, "alice@contoso.local", false},
		{"several delivered-to: last", "Delivered-To: alice@contoso.local\nDelivered-To: carol@contoso.local\n",
			func(r *config.Routing) { r.EnvelopeHeaders = []string{"Delivered-To:last"} }, "carol@contoso.local", false},
		{"several delivered-to: second", "Delivered-To: alice@contoso.local\nDelivered-To: carol@contoso.local\nDelivered-To: dave@contoso.local\n",
			func(r *config.Routing) { r.EnvelopeHeaders = []string{"Delivered-To:2"} }, "carol@contoso.local", false},
		{"several delivered-to: all, deduped", "Delivered-To: alice@contoso.local\nDelivered-To: Alice@contoso.local\nDelivered-To: carol@contoso.local\n",
			func(r *config.Routing) { r.EnvelopeHeaders = []string{"Delivered-To:all"} }, "alice@contoso.local,carol@contoso.local", false},
		{"envelope-to", "Envelope-To: <dave@contoso.local>\nTo: list@lists.example\n", nil, "dave@contoso.local", false},
		{"x-envelope-to", "X-Envelope-To: erin@contoso.local\n", nil, "erin@contoso.local", false},
		{"received for, our own trace skipped", ours + "Received: from mx.isp by pop.isp for <frank@contoso.local>; Mon, 23 Nov 2026 09:00:00 +0000\nTo: someone@else.example\n", nil, "frank@contoso.local", false},
		{"received for, only newest used", "Received: from a by b for <newest@contoso.local>; date\nReceived: from c by d for <older@contoso.local>; date\n", nil, "newest@contoso.local", false},
		{"bcc: envelope names the hidden recipient", "To: partner@else.example\nDelivered-To: grace@contoso.local\n", nil, "grace@contoso.local", false},
		{"to/cc fallback", "To: Alice <alice@contoso.local>, partner@else.example\nCc: carol@contoso.local, alice@contoso.local\n", nil, "alice@contoso.local,carol@contoso.local", false},
		{"to/cc fallback off", "To: alice@contoso.local\n", func(r *config.Routing) { r.ToCcFallback = &no }, "!", false},
		{"to/cc fallback on explicitly", "To: alice@contoso.local\n", func(r *config.Routing) { r.ToCcFallback = &yes }, "alice@contoso.local", false},
		{"list mail not copied to every local To", "List-Id: <staff.contoso.local>\nTo: staff@contoso.local, alice@contoso.local, bob@contoso.local\n", nil, "!", false},
		{"list mail with envelope header routes", "Precedence: list\nDelivered-To: alice@contoso.local\nTo: everyone@contoso.local\n", nil, "alice@contoso.local", false},
		{"alias", "Delivered-To: bob@contoso.local\n", nil, "robert@contoso.local", false},
		{"domain alias", "Delivered-To: anyone@old.contoso.local\n", func(r *config.Routing) { r.LocalDomains = append(r.LocalDomains, "old.contoso.local") }, "postmaster@contoso.local", false},
		{"forwarded: resent headers ignored, delivered-to wins", "Resent-To: zoe@contoso.local\nTo: orig@else.example\nDelivered-To: yann@contoso.local\n", nil, "yann@contoso.local", false},
		{"nothing local: unrouted_to", "To: someone@else.example\n", func(r *config.Routing) { r.UnroutedTo = "postmaster@contoso.local" }, "postmaster@contoso.local", true},
		{"nothing local: failed", "To: someone@else.example\n", nil, "!", false},
		{"sloppy list with semicolons", "To: alice@contoso.local; carol@contoso.local\n", nil, "alice@contoso.local,carol@contoso.local", false},
		{"case of domain", "Delivered-To: Alice@CONTOSO.LOCAL\n", nil, "Alice@CONTOSO.LOCAL", false},
		// Issue 15.1: the ISP's Delivered-To for the mailbox itself sits on
		// top of the one naming the recipient; the default takes the
		// topmost local occurrence, not the topmost one.
		{"isp mailbox delivered-to on top of the recipient's", "Delivered-To: office@isp.example\nDelivered-To: jane@contoso.local\nTo: office@isp.example\n",
			unrouted, "jane@contoso.local", false},
		{"isp mailbox x-original-to on top of the recipient's", "X-Original-To: office@isp.example\nX-Original-To: jane@contoso.local\nTo: office@isp.example\n",
			unrouted, "jane@contoso.local", false},
		{"forwarded: the newer local delivered-to wins over the older", "Delivered-To: office@isp.example\nDelivered-To: jane@contoso.local\nDelivered-To: mark@contoso.local\nTo: mark@contoso.local\n",
			unrouted, "jane@contoso.local", false},
		{"list mail: the member's delivered-to below the isp's, after aliases", "List-Id: <staff.lists.example>\nDelivered-To: office@isp.example\nDelivered-To: bob@contoso.local\nTo: staff@lists.example, alice@contoso.local\n",
			unrouted, "robert@contoso.local", false},
		{"an isp address aliased to a local one is local", "Delivered-To: office@isp.example\nDelivered-To: jane@contoso.local\n",
			func(r *config.Routing) {
				r.Aliases = map[string]string{"office@isp.example": "reception@contoso.local"}
			}, "reception@contoso.local", false},
		{"explicit :first keeps the topmost only", "Delivered-To: office@isp.example\nDelivered-To: jane@contoso.local\nTo: office@isp.example\n",
			func(r *config.Routing) { unrouted(r); r.EnvelopeHeaders = []string{"Delivered-To:first"} }, "postmaster@contoso.local", true},
		{"received: the newest for clause that is local", "Received: from a by b for <office@isp.example>; date\nReceived: from c by d; date\nReceived: from e by f for <jane@contoso.local>; date\n",
			func(r *config.Routing) { unrouted(r); r.EnvelopeHeaders = []string{"Received"} }, "jane@contoso.local", false},
		{"order: x-original-to first", "Delivered-To: alice@contoso.local\nX-Original-To: carol@contoso.local\n",
			func(r *config.Routing) { r.EnvelopeHeaders = []string{"X-Original-To", "Delivered-To"} }, "carol@contoso.local", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := header(t, "X-Popspool-Account: box\n"+c.head+"From: x@else.example\nSubject: s")
			r, err := Decide(multi(c.mod), h)
			trace := strings.Join(r.Trace, "\n")
			if c.want == "!" {
				if _, ok := err.(*NoRecipientError); !ok {
					t.Fatalf("got %v, %v; want no recipient\n%s", r.Recipients, err, trace)
				}
				return
			}
			if err != nil || strings.Join(r.Recipients, ",") != c.want || r.Unrouted != c.unrouted {
				t.Fatalf("got %v unrouted=%v err=%v, want %s\n%s", r.Recipients, r.Unrouted, err, c.want, trace)
			}
		})
	}
}

func unrouted(r *config.Routing) { r.UnroutedTo = "postmaster@contoso.local" }

// explain shows which occurrence was taken and why the others were passed
// over (issue 15.1).
func TestMultiDropTraceNamesOccurrences(t *testing.T) {
	h := header(t, "X-Popspool-Account: box\nDelivered-To: office@isp.example\nDelivered-To: jane@contoso.local\nDelivered-To: mark@contoso.local\nFrom: x@else.example\n")
	r, err := Decide(multi(nil), h)
	if err != nil {
		t.Fatal(err)
	}
	trace := strings.Join(r.Trace, "\n")
	for _, want := range []string{
		"Delivered-To: 3 occurrences; taking the topmost that names a local address",
		"Delivered-To #1: office@isp.example: not in local_domains, passed over",
		"Delivered-To #2: jane@contoso.local: local recipient, taken",
		"Delivered-To #3: mark@contoso.local: not used, #2 above is newer",
	} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
}

// Issue 15.2: each recipient carries the address it was found as, before
// aliases, for deliverd's ORCPT; a single-drop account's recipients the
// address the ISP's envelope header names, if any.
func TestOriginals(t *testing.T) {
	cases := []struct {
		name, head string
		mod        func(*config.Routing)
		want       string // recipient=original, joined by ","
	}{
		{"delivered-to below the isp's", "Delivered-To: office@isp.example\nDelivered-To: jane@contoso.local\n", nil, "jane@contoso.local=jane@contoso.local"},
		{"alias", "Delivered-To: bob@contoso.local\n", nil, "robert@contoso.local=bob@contoso.local"},
		{"domain alias", "X-Original-To: Anyone@old.contoso.local\n", func(r *config.Routing) { r.LocalDomains = append(r.LocalDomains, "old.contoso.local") },
			"postmaster@contoso.local=Anyone@old.contoso.local"},
		{"isp address aliased", "Delivered-To: office@isp.example\n", func(r *config.Routing) {
			r.Aliases = map[string]string{"office@isp.example": "reception@contoso.local"}
		},
			"reception@contoso.local=office@isp.example"},
		{"to and cc", "To: Alice <alice@contoso.local>, x@else.example\nCc: bob@contoso.local\n", nil,
			"alice@contoso.local=alice@contoso.local,robert@contoso.local=bob@contoso.local"},
		{"duplicate keeps the first original", "Delivered-To: bob@contoso.local\nDelivered-To: robert@contoso.local\n",
			func(r *config.Routing) { r.EnvelopeHeaders = []string{"Delivered-To:all"} }, "robert@contoso.local=bob@contoso.local"},
		{"received for", ours + "Received: from a by b for <carol@contoso.local>; date\n", nil, "carol@contoso.local=carol@contoso.local"},
		{"unrouted has none", "To: x@else.example\n", unrouted, "postmaster@contoso.local="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Decide(multi(c.mod), header(t, "X-Popspool-Account: box\n"+c.head+"From: x@else.example\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := originals(r); got != c.want {
				t.Fatalf("got %s, want %s\n%s", got, c.want, strings.Join(r.Trace, "\n"))
			}
		})
	}
}

func TestOriginalsSingleDrop(t *testing.T) {
	for head, want := range map[string]string{
		"Delivered-To: office@isp.example\nTo: someone@else.example\n": "x@y.z=office@isp.example",
		"X-Original-To: <office@isp.example>\n":                        "x@y.z=office@isp.example",
		ours + "To: office@isp.example\n":                              "x@y.z=",
	} {
		r, err := Decide(multi(nil), header(t, "X-Popspool-Account: shop\n"+head+"From: a@b.example\n"))
		if err != nil || originals(r) != want {
			t.Errorf("%q: got %s %v, want %s", head, originals(r), err, want)
		}
	}
}

func originals(r Route) string {
	var out []string
	for _, a := range r.Recipients {
		out = append(out, a+"="+r.Originals[a])
	}
	return strings.Join(out, ",")
}

func TestSender(t *testing.T) {
	for head, want := range map[string]string{
		"Return-Path: <bounce@isp.example>\nFrom: a@b.example\n": "bounce@isp.example",
		"Return-Path: <>\nFrom: MAILER-DAEMON@isp.example\n":     "",
		"Sender: s@b.example\nFrom: a@b.example\n":               "s@b.example",
		"From: \"Smith, J\" <j@b.example>\n":                     "j@b.example",
		"From: =?x-unknown?q?abc?= <u@b.example>\n":              "u@b.example",
		"From: nobody\n": "",
		// Issue 16.5: a control character (it became a space in X-Sender,
		// which the local server refused) or an over-long local part is
		// no envelope sender, and From is not taken in its stead.
		"Return-Path: <a\x00b@isp.example>\nFrom: a@b.example\n":                          "",
		"Return-Path: <a\x01b@isp.example>\nFrom: a@b.example\n":                          "",
		"Return-Path: <" + strings.Repeat("l", 65) + "@isp.example>\nFrom: a@b.example\n": "",
		"Return-Path: <jos\xc3\xa9@isp.example>\n":                                        "jos\u00e9@isp.example",
	} {
		r, err := Decide(multi(nil), header(t, "X-Popspool-Account: shop\n"+head))
		if err != nil || r.Sender != want {
			t.Errorf("%q: got %q %v, want %q", head, r.Sender, err, want)
		}
	}
}

func TestAccountChoice(t *testing.T) {
	cfg := multi(nil)
	if _, err := Decide(cfg, header(t, "Subject: x\n")); err != ErrNoAccount {
		t.Fatalf("got %v", err)
	}
	if _, err := Decide(cfg, header(t, "X-Popspool-Account: nope\n")); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("got %v", err)
	}
	cfg.Account = cfg.Account[:1]
	r, err := Decide(cfg, header(t, "Subject: x\n"))
	if err != nil || r.Recipients[0] != "x@y.z" {
		t.Fatalf("single account: %v %v", r, err)
	}
}

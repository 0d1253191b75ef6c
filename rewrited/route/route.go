// Package route decides the envelope of a fetched message: who it is from
// and which local addresses it goes to. Version one knows single-drop
// accounts: every message of the account goes to its deliver_to list.
package route

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"example.org/popspool/shared/config"
)

// AccountHeader names the account a message was fetched from; fetchd adds it.
const AccountHeader = "X-Popspool-Account"

// Route is the outcome for one message.
type Route struct {
	Account    string
	Sender     string // "" for the null sender
	Recipients []string
}

// ErrNoAccount means the message names no known account and the config has
// more than one, so its recipients cannot be decided.
var ErrNoAccount = errors.New("no known X-Popspool-Account header and more than one account configured")

// Decide routes a message by its header.
func Decide(cfg *config.Config, h textproto.Header) (Route, error) {
	acct, err := account(cfg, h.Get(AccountHeader))
	if err != nil {
		return Route{}, err
	}
	r := Route{Account: acct.Name, Sender: Sender(h)}
	r.Recipients = dedupe(acct.DeliverTo)
	if len(r.Recipients) == 0 {
		return Route{}, fmt.Errorf("account %s has no deliver_to address", acct.Name)
	}
	return r, nil
}

func account(cfg *config.Config, name string) (*config.Account, error) {
	name = strings.TrimSpace(name)
	if a, ok := cfg.AccountNamed(name); ok {
		return a, nil
	}
	if len(cfg.Account) == 1 {
		return &cfg.Account[0], nil
	}
	if name != "" {
		return nil, fmt.Errorf("account %q in %s is not in the config", name, AccountHeader)
	}
	return nil, ErrNoAccount
}

// Sender returns the envelope sender: the Return-Path the ISP recorded,
// else the Sender or From address; "" for the null sender <> (bounces)
// and when none can be parsed.
func Sender(h textproto.Header) string {
	if rp := strings.TrimSpace(h.Get("Return-Path")); rp != "" {
		rp = strings.TrimSuffix(strings.TrimPrefix(rp, "<"), ">")
		if rp == "" || config.ValidAddress(rp) {
			return rp
		}
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	for _, key := range []string{"Sender", "From"} {
		list, err := mh.AddressList(key)
		if err == nil && len(list) > 0 && config.ValidAddress(list[0].Address) {
			return list[0].Address
		}
	}
	return ""
}

func dedupe(addrs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range addrs {
		k := strings.ToLower(a)
		if !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}

package main

import (
	"fmt"
	"net/url"

	"example.org/popspool/deliverd/queue"
	"example.org/popspool/shared/service"
)

// newTarget makes the delivery target of the config's deliver.target.
func newTarget(env *service.Env) (queue.Target, error) {
	d := env.Config.Deliver
	u, err := url.Parse(d.Target)
	if err != nil {
		return nil, fmt.Errorf("deliver.target: %w", err)
	}
	switch u.Scheme {
	case "maildir":
		return &queue.Maildirs{Pattern: u.Path}, nil
	}
	return nil, fmt.Errorf("deliver.target: %s is not supported yet", u.Scheme)
}

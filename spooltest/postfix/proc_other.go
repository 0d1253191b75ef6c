//go:build !unix

package postfix

import "errors"

func (s *Server) processes() []int { return nil }

func terminate(int) {}

func kill(int) {}

func chownName(string, string) error { return errors.New("postfix: only on Unix") }

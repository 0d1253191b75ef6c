# popspool: make build | test | demo | lint | windows
# `make test` is what CI runs (.ci/run); it installs what it needs.

GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
MODULES := shared fetchd rewrited deliverd spooltest
PKGS    := $(addsuffix /...,$(addprefix ./,$(MODULES)))
DAEMONS := fetchd rewrited deliverd
BIN     := $(CURDIR)/bin

.PHONY: all build test unit deps lint windows demo bench clean

all: build

build:
	@mkdir -p $(BIN)
	@for d in $(DAEMONS); do (cd $$d && $(GO) build -o $(BIN)/ .) || exit 1; done
	@echo "built $(DAEMONS) into $(BIN)"

# Unit, end-to-end, crash and real-server tests. As root (CI) the real
# Dovecot and Postfix are installed and their tests must run, not skip.
test: deps lint
	@if [ "$$(id -u)" = 0 ]; then export POPSPOOL_REQUIRE_REAL=1; fi; \
	$(GO) test -race -shuffle=on -count=1 -timeout 20m $(PKGS)

# Unit tests only: fast, no real servers, no crash runs.
unit:
	$(GO) test -short -count=1 $(PKGS)

deps:
	@bash scripts/install-deps.sh

lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	GOOS=windows $(GO) vet $(PKGS)

windows:
	@mkdir -p $(BIN)/windows
	@for d in $(DAEMONS); do (cd $$d && GOOS=windows GOARCH=amd64 $(GO) build -o $(BIN)/windows/ .) || exit 1; done
	@ls -l $(BIN)/windows

demo: build
	$(GO) run ./spooltest/cmd/demo -bin $(BIN)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x $(PKGS)

clean:
	rm -rf $(BIN)

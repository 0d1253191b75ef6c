# popspool: make build | test | demo | lint | windows | install | chaos
# `make test` is what CI runs (.ci/run); it installs what it needs.

GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
MODULES := shared fetchd rewrited deliverd spooltest
PKGS    := $(addsuffix /...,$(addprefix ./,$(MODULES)))
DAEMONS := fetchd rewrited deliverd
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
# Static checks, run through the module proxy at fixed versions.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0
LDFLAGS := -X example.org/popspool/shared/service.Version=$(VERSION)

# make install (docs/operations.md): DESTDIR for staging or packaging.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
DOCDIR      ?= $(PREFIX)/share/doc/popspool
SYSCONFDIR  ?= /etc
UNITDIR     ?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
UNITS       := $(addprefix dist/systemd/popspool-,$(addsuffix .service,$(DAEMONS))) dist/systemd/popspool.target

.PHONY: all build test unit deps lint vulncheck windows demo bench bench-e2e bench-compare bench-tools clean install uninstall install-check deb deb-check systemd-test wine-test console-test

all: build

build:
	@mkdir -p $(BIN)
	@for d in $(DAEMONS); do (cd $$d && $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ .) || exit 1; done
	@echo "built $(DAEMONS) $(VERSION) into $(BIN)"

# Unit, end-to-end, crash and real-server tests. As root (CI) the real
# Dovecot and Postfix (and chromium for the console's browser test) are
# installed and their tests must run, not skip.
test: deps lint
	@if [ "$$(id -u)" = 0 ]; then export POPSPOOL_REQUIRE_REAL=1 POPSPOOL_REQUIRE_BROWSER=1; fi; \
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
	@GOBIN=$(BIN) $(GO) install $(STATICCHECK)
	$(BIN)/staticcheck $(PKGS)
	GOOS=windows $(BIN)/staticcheck $(PKGS)

# govulncheck needs its database (vuln.go.dev), which a machine without
# internet cannot reach: then it says so and does not fail.
vulncheck:
	@if curl -fsS -m 10 -o /dev/null https://vuln.go.dev/index/db.json 2>/dev/null; then \
		$(GO) run $(GOVULNCHECK) $(PKGS); \
	else echo "vulncheck: skipped, vuln.go.dev cannot be reached from here (the modules linked are listed in docs/operations.md)"; fi

windows:
	@mkdir -p $(BIN)/windows
	@for d in $(DAEMONS); do (cd $$d && GOOS=windows GOARCH=amd64 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/windows/ .) || exit 1; done
	@cp dist/popspool.toml.example dist/windows/install.ps1 $(BIN)/windows/
	@ls -l $(BIN)/windows

demo: build
	$(GO) run ./spooltest/cmd/demo -bin $(BIN)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x $(PKGS)

# The long runs of layers 3 and 4 (docs/chaos.md): process chaos with N
# kills (TestChaos, then TestChaosReal against a private Dovecot and
# Postfix: as root it must run, and make deps installs them; skipped with
# a reason otherwise; then both again over TLS, TestChaosTLS and
# TestChaosRealTLS), then EPISODES disk-full episodes (root only). make
# test runs short ones; SEED=... replays a run.
N        ?= 1000
EPISODES ?= 20
chaos: deps
	@if [ "$$(id -u)" = 0 ]; then export POPSPOOL_REQUIRE_REAL=1; fi; \
	POPSPOOL_CHAOS_N=$(N) POPSPOOL_DISKFULL_EPISODES=$(EPISODES) $(if $(SEED),POPSPOOL_SEED=$(SEED)) \
	$(GO) test -count=1 -p 1 -timeout 0 -v -run 'TestChaos|TestDiskFull' ./spooltest/chaos ./spooltest/diskfull

# End to end against real servers: a private Dovecot (POP3) into a private
# Postfix (SMTP), popspool's three daemons vs Debian's stock fetchmail and
# vs Postfix's own smtp-source, and into a Maildir vs mpop; plain and TLS,
# N x 10 KB (POPSPOOL_BENCH_N, default 1000) and 200 x 1 MB (POPSPOOL_BENCH_N_1MB),
# with CPU and peak RSS per daemon and a strace pass (system calls per message). As root;
# installs fetchmail and mpop when missing. docs/benchmarks.md.
bench-e2e: bench-tools
	$(GO) test -run '^$$' -bench EndToEnd -benchtime 1x -timeout 30m ./spooltest/bench

# The side by side of issue 12 RUNS times, and the range of each figure
# over the runs (spooltest/cmd/benchranges); the runs' output is kept in
# bench-compare.log.
RUNS ?= 3
bench-compare: bench-tools
	for i in $$(seq $(RUNS)); do \
		$(GO) test -run '^$$' -bench 'EndToEnd/.*/.*/(popspool|popspool-strace|smtp-source-s4|mpop|plain|tls)$$/(popspool|popspool-strace|mpop)$$' -benchtime 1x -timeout 30m ./spooltest/bench; \
	done > bench-compare.log 2>&1; $(GO) run ./spooltest/cmd/benchranges < bench-compare.log

# fetchmail and mpop, the peers of the end-to-end benchmark (as root).
bench-tools: deps
	@if [ "$$(id -u)" = 0 ] && ! { command -v fetchmail && command -v mpop; } >/dev/null; then \
		echo "bench: installing fetchmail and mpop"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends fetchmail mpop >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends fetchmail mpop >/dev/null; }; \
	fi

# Binaries, systemd units, the popspool user and spool (sysusers.d,
# tmpfiles.d), an example config and the docs. The config itself and the
# spool's contents are never overwritten.
install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/popspool \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(addprefix $(BIN)/,$(DAEMONS)) $(DESTDIR)$(SBINDIR)/
	for u in $(UNITS); do \
		sed -e 's#/usr/local/sbin#$(SBINDIR)#g' -e 's#/usr/local/share/doc/popspool#$(DOCDIR)#g' \
		    -e 's#/etc/popspool#$(SYSCONFDIR)/popspool#g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u) && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done
	install -m 0644 dist/systemd/popspool.sysusers $(DESTDIR)$(SYSUSERSDIR)/popspool.conf
	install -m 0644 dist/systemd/popspool.tmpfiles $(DESTDIR)$(TMPFILESDIR)/popspool.conf
	install -m 0644 dist/popspool.toml.example $(DESTDIR)$(SYSCONFDIR)/popspool/popspool.toml.example
	install -m 0644 README.md docs/operations.md docs/events.md $(DESTDIR)$(DOCDIR)/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then \
		systemd-sysusers $(SYSUSERSDIR)/popspool.conf && \
		systemd-tmpfiles --create $(TMPFILESDIR)/popspool.conf && \
		systemctl daemon-reload; \
	fi
	@echo "installed popspool $(VERSION) into $(DESTDIR)$(PREFIX). Next (docs/operations.md):"
	@echo "  cp $(SYSCONFDIR)/popspool/popspool.toml.example $(SYSCONFDIR)/popspool/popspool.toml, edit it, then"
	@echo "  fetchd check && systemctl enable --now popspool.target && fetchd status"

# Removes what install put there; the config, the user and the spool stay.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,$(DAEMONS)) $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS))) \
		$(DESTDIR)$(SYSUSERSDIR)/popspool.conf $(DESTDIR)$(TMPFILESDIR)/popspool.conf \
		$(DESTDIR)$(SYSCONFDIR)/popspool/popspool.toml.example
	rm -rf $(DESTDIR)$(DOCDIR)

# make install into a temporary DESTDIR, and check what landed where.
install-check:
	@d=$$(mktemp -d) && \
	$(MAKE) --no-print-directory install DESTDIR=$$d PREFIX=/usr >/dev/null && \
	(cd $$d && find . -type f | sort) && \
	grep -qx 'ExecStart=/usr/sbin/fetchd -config /etc/popspool/popspool.toml' $$d/lib/systemd/system/popspool-fetchd.service && \
	test -x $$d/usr/sbin/deliverd && test -f $$d/etc/popspool/popspool.toml.example && \
	$$d/usr/sbin/rewrited -version | grep -q '^rewrited (popspool) ' && \
	$(MAKE) --no-print-directory uninstall DESTDIR=$$d PREFIX=/usr >/dev/null && \
	test -z "$$(find $$d -type f)" && rm -rf $$d && echo "install-check: ok"

# A .deb of the binaries, units, sysusers, tmpfiles, example config, man
# pages and docs (scripts/mkdeb.sh, dist/debian/), then lintian on it:
# an error or a warning fails (each override in dist/debian/lintian-overrides
# has its reason). As root; apt-get installs dpkg-dev and lintian if missing.
deb:
	@for t in dpkg-shlibdeps:dpkg-dev lintian:lintian; do command -v $${t%%:*} >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $${t#*:} >/dev/null || exit 1; done
	@deb=$$(bash scripts/mkdeb.sh) && ls -l $$deb && \
	echo "lintian $$deb" && lintian --fail-on error,warning --display-info --tag-display-limit 0 $$deb && echo "deb: ok $$deb"

deb-check: deb

# The .deb under a real systemd: a Debian bookworm tree (debootstrap,
# cached in /var/cache/popspool-systemd-test) booted with systemd-nspawn;
# start, readiness, reload, the watchdog, the hardening, the journal, then
# removal. Slow and root only: not part of make test. scripts/systemd-test.sh.
systemd-test: deb
	bash scripts/systemd-test.sh

# The Windows binaries under Wine (Debian's wine64, with a small shim for
# the bcryptprimitives.dll Wine 8 lacks, built with MinGW): the demo flow
# with -once runs, then the three as services of Wine's Service Control
# Manager. What it proves and what not: docs/operations.md §3. As root,
# apt-get installs wine64 and gcc-mingw-w64-x86-64 if missing.
wine-test:
	@for t in /usr/lib/wine/wine64:wine64 x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64; do \
		command -v $${t%%:*} >/dev/null || test -x $${t%%:*} || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $${t#*:} >/dev/null || exit 1; done
	POPSPOOL_REQUIRE_WINE=1 $(GO) test -count=1 -v -timeout 10m ./spooltest/wine

# The console page in a real headless browser (Debian's chromium, as root
# when it is missing); the screenshots go to $(ARTIFACTS).
ARTIFACTS ?= $(CURDIR)/artifacts
console-test:
	@command -v chromium >/dev/null || command -v chromium-headless-shell >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || exit 1
	POPSPOOL_REQUIRE_BROWSER=1 POPSPOOL_ARTIFACTS=$(ARTIFACTS) $(GO) test -count=1 -run TestConsole -v ./spooltest/...

clean:
	rm -rf $(BIN)

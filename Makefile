# omail: see README.md. `make` builds bin/, `make test` runs every test,
# `make demo` shows the main job, `make check` lints, `make cover`
# measures what the tests exercise.

GO         ?= go
PREFIX     ?= /usr/local
DESTDIR    ?=
OMAIL_HOME ?= /var/omail
PROGS       = omail-queue omail-pack omail-unpack omail-inject omail-deliver omail-smtpd
# Static and stripped: every message costs program starts (tcpserver
# starts omail-smtpd, which starts omail-queue), and a static binary
# without symbols starts faster (docs/BENCHMARKS.md).
LDFLAGS     = -s -w -X omail/lib/home.Default=$(OMAIL_HOME)
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOBIN      := $(shell $(GO) env GOPATH)/bin

.PHONY: all build test unit scenario fuzz demo check cover install uninstall bench clean deps

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/ $(addprefix ./,$(PROGS))

# Every test: Go unit tests (with the race detector, fuzz seed corpora
# included) and the scenario tests that drive the built binaries with
# real tools. test/deps installs those tools (apt-get, as root) or fails
# saying which are missing: no test skips for want of a tool.
test: build deps unit scenario

deps:
	@test/deps

unit:
	$(GO) test -race -count=1 ./...

scenario: build
	@test/run

# Short fuzzing runs of every fuzz target (not part of `make test`).
# FUZZTIME is a duration (20s) or a count of inputs (5000x). CI runs
# counts: Go 1.26's fuzzing coordinator can report a bare "context
# deadline exceeded" when a duration runs out (golang/go#75804), which
# is not a finding; a count has no deadline to race.
FUZZTIME ?= 20s
fuzz:
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	  done; done

demo: build deps
	@demo/run

# go.mod and go.sum must be what `go mod tidy` writes: every module the
# code imports listed as direct, nothing stale.
check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum differ from what go mod tidy writes (above): run go mod tidy"; exit 1; }
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install $(STATICCHECK)
	$(GOBIN)/staticcheck ./...

# Unit and scenario coverage merged, reported under build/cover/
# (git-ignored): see test/util/cover. The programs it measures are
# built there with -cover; bin/ is left as `make build` makes it.
cover: deps
	@GO="$(GO)" LDFLAGS="$(LDFLAGS)" PROGS="$(PROGS)" test/util/cover

bench: build
	@bench/run

# make install [PREFIX=...] [OMAIL_HOME=...] [DESTDIR=...] [SENDMAIL=...]:
# the programs are built for OMAIL_HOME into build/install/bin (bin/ is
# left as `make build` made it) and installed by install/install.sh,
# which says what it does: as root it also makes the users, owners, modes
# and the set-uid omail-queue; as anyone else it says what root must do.
# SENDMAIL=/usr/sbin/sendmail adds that link. `make uninstall` keeps the
# queue, control/ and service/.
SENDMAIL   ?=
INSTALLENV  = PREFIX="$(PREFIX)" OMAIL_HOME="$(OMAIL_HOME)" DESTDIR="$(DESTDIR)" \
              SENDMAIL="$(SENDMAIL)" PROGS_DIR=build/install/bin
install:
	@mkdir -p build/install/bin
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o build/install/bin/ $(addprefix ./,$(PROGS))
	@$(INSTALLENV) install/install.sh install

uninstall:
	@$(INSTALLENV) install/install.sh uninstall

clean:
	rm -rf bin build

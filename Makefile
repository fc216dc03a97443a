# transit - the two commands: `make run` and `make test` (see README.md).
# Everything else here is what they are made of.

SHELL := /bin/bash
PYTHON := /usr/bin/python3
# What building and running need: `make run` installs only these, so it never
# replaces the administrator's MTA or starts a DNS server (postfix would remove
# exim4; nsd may bind port 53).
DEB_RUN_PACKAGES := gcc meson ninja-build pkg-config libevent-dev libssl-dev libconfuse-dev \
	libjansson-dev libunbound-dev libcrypt-dev zlib1g-dev openssl libldap2-dev libmicrohttpd-dev
# Test peers and test tools: `make test` only. The tests start the servers
# among them themselves (haproxy, nsd, postfix, dovecot) on 127.0.0.1 ports or in
# temporary directories (a system Dovecot left running does not disturb them).
DEB_TEST_PACKAGES := clang libcmocka-dev libclang-rt-14-dev python3 python3-pytest swaks msmtp \
	postfix nsd faketime haproxy libnet-ssleay-perl dovecot-core nodejs slapd ldap-utils chromium python3-prometheus-client
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
FUZZ_SECONDS ?= 10
FUZZ_LONG_SECONDS ?= 600
SOAK_SECONDS ?= 180

.PHONY: all deps test-deps install-packages build build-san build-fuzz run test unit integration fuzz fuzz-short soak clean

all: build

# Install the Debian packages that are missing (needs root or sudo).
# `make deps` for running, `make test-deps` for the test peers as well.
# apt-get runs with DEBIAN_FRONTEND=noninteractive (no debconf questions).
# Debian's haproxy package enables and starts haproxy.service; the tests
# start their own HAProxy, so a service started by the install is stopped
# and disabled again (in containers policy-rc.d usually stops it anyway).
DEB_TEST_SERVICES := haproxy slapd
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_RUN_PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_RUN_PACKAGES) $(DEB_TEST_PACKAGES)"
	@# nodemailer for tests/integration/test_nodemailer.py, pinned by tests/node/package-lock.json
	@# (Debian's own nodejs comes without npm; NodeSource's has it and conflicts with Debian's npm)
	@command -v npm >/dev/null || $(MAKE) --no-print-directory install-packages PACKAGES=npm
	@[ -d tests/node/node_modules ] || npm ci --prefix tests/node --no-audit --no-fund

install-packages:
	@missing=$$(for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing && \
		for svc in $(DEB_TEST_SERVICES); do \
			case " $$(echo $$missing) " in *" $$svc "*) ;; *) continue ;; esac; \
			if command -v systemctl >/dev/null && systemctl is-enabled -q $$svc 2>/dev/null; then \
				echo "stopping and disabling $$svc.service (the tests start their own)"; \
				$$SUDO systemctl disable --now -q $$svc || true; \
			fi; \
		done; \
	fi

build/build.ninja:
	meson setup build

build: deps build/build.ninja
	ninja -C build

build-san/build.ninja:
	meson setup build-san -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

build-san: test-deps build-san/build.ninja
	ninja -C build-san

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Dfuzz=true -Dbuildtype=debug -Db_lundef=false

build-fuzz: test-deps build-fuzz/build.ninja
	ninja -C build-fuzz

# Run transit in the foreground on loopback ports with everything under ./var.
run: build
	mkdir -p var
	./build/transitd -c etc/transit-dev.conf

unit: build-san
	$(SAN_ENV) meson test -C build-san --suite unit --print-errorlogs

integration: build-san
	TRANSITD=$(CURDIR)/build-san/transitd TRANSITCTL=$(CURDIR)/build-san/transitctl \
	$(SAN_ENV) ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration tests/dns

fuzz-short: build-fuzz
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

fuzz: build-fuzz
	./tests/fuzz/run.sh build-fuzz $(FUZZ_LONG_SECONDS)

test: test-deps build unit fuzz-short integration

# A few minutes of mixed traffic through the ASan build (not part of `make test`):
# see tests/soak/soak.py. A small quarantine, so that RSS shows the heap, not
# ASan's pool of freed blocks (256 MiB by default).
soak: build-san
	TRANSITD=$(CURDIR)/build-san/transitd TRANSITCTL=$(CURDIR)/build-san/transitctl \
	SOAK_SECONDS=$(SOAK_SECONDS) \
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:quarantine_size_mb=32 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(PYTHON) tests/soak/soak.py

clean:
	rm -rf build build-san build-fuzz

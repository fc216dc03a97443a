# transit - the two commands: `make run` and `make test` (see README.md).
# Everything else here is what they are made of.

SHELL := /bin/bash
PYTHON := /usr/bin/python3
DEB_PACKAGES := gcc clang meson ninja-build pkg-config libevent-dev libssl-dev libconfuse-dev \
	libjansson-dev libunbound-dev libcmocka-dev libcrypt-dev zlib1g-dev libclang-rt-14-dev \
	openssl python3 python3-pytest swaks msmtp postfix nsd
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
FUZZ_SECONDS ?= 15
FUZZ_LONG_SECONDS ?= 600

.PHONY: all deps build build-san build-fuzz run test unit integration fuzz fuzz-short clean

all: build

# Install the Debian packages that are missing (needs root or sudo).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

build/build.ninja:
	meson setup build

build: deps build/build.ninja
	ninja -C build

build-san/build.ninja:
	meson setup build-san -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

build-san: deps build-san/build.ninja
	ninja -C build-san

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Dfuzz=true -Dbuildtype=debug -Db_lundef=false

build-fuzz: deps build-fuzz/build.ninja
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

test: build unit fuzz-short integration

clean:
	rm -rf build build-san build-fuzz

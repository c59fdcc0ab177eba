# Cross build for aarch64 Linux (docs/portability.md), included by the Makefile
# before anything reads CC, BUILD or PKG_CONFIG:
#   make deps ARCH=aarch64    cross gcc, the arm64 libraries (Debian multiarch),
#                             qemu-user and its binfmt handler (needs root)
#   make test ARCH=aarch64    build into build-aarch64/, run every suite under qemu
# CROSS= names another toolchain prefix (e.g. an engine's aarch64-none-linux-gnu-).
# Nothing here changes the native build: without ARCH (or with the host's) this
# file sets nothing.
ARCH ?= $(shell uname -m)
HOST_ARCH := $(shell uname -m)
ifneq ($(ARCH),$(HOST_ARCH))
ifneq ($(ARCH),aarch64)
  $(error ARCH=$(ARCH): only aarch64 is supported as a cross target (docs/portability.md))
endif
CROSS ?= aarch64-linux-gnu-
CROSS_TRIPLET := aarch64-linux-gnu
ifeq ($(origin CC),default)
  CC := $(CROSS)gcc
endif
ifeq ($(origin AR),default)
  AR := $(CROSS)ar
endif
NM := $(CROSS)nm
BUILD ?= build-aarch64$(if $(SAN),-san)
# Debian cannot co-install the arm64 Criterion (its libnanomsg5 differs from
# amd64's by a binNMU) nor the arm64 lua5.4 interpreter (Multi-Arch: foreign)
# beside the native ones: `make deps ARCH=aarch64` unpacks them here instead.
CROSS_EXTRA ?= /opt/selut-cross/$(CROSS_TRIPLET)
CROSS_PC := $(CROSS_EXTRA)/pkgconfig:/usr/lib/$(CROSS_TRIPLET)/pkgconfig:/usr/share/pkgconfig
PKG_CONFIG := env PKG_CONFIG_LIBDIR=$(CROSS_PC) pkg-config
# GCC already keeps a*b+c unfused under -std=c11; aarch64 always has fmadd,
# so say it explicitly: the same IEEE operations as on x86-64, the same bits.
CFLAGS ?= -O2 -g
CFLAGS += -ffp-contract=off
# No Open MPI for arm64 here: tests/mpi is skipped, loudly (docs/portability.md).
MPI ?= 0
LUA_CMOD_DIR ?= $(PREFIX)/lib/$(CROSS_TRIPLET)/lua/5.4
# The test scripts run these aarch64 binaries through binfmt (qemu-aarch64).
CROSS_TEST_ENV := LUA=$(CROSS_EXTRA)/bin/lua5.4 NM=$(NM) PKG_CONFIG="$(PKG_CONFIG)"
CROSS_DEB_PACKAGES := gcc-$(CROSS_TRIPLET) qemu-user qemu-user-binfmt libc6:arm64 liblua5.4-dev:arm64 \
                      libopenblas-dev:arm64 libpng-dev:arm64 zlib1g-dev:arm64 libreadline-dev:arm64 \
                      libffi8:arm64 libgit2-1.5:arm64 libprotobuf-c-dev:arm64 lua5.4 tmux
CROSS_DEB_UNPACK := libcriterion3:arm64 libcriterion-dev:arm64 libnanomsg5:arm64 lua5.4:arm64
ifeq ($(filter deps clean,$(MAKECMDGOALS)),)
  ifeq ($(shell command -v $(CC) && test -x $(CROSS_EXTRA)/bin/lua5.4 && echo y),)
    $(error ARCH=$(ARCH): $(CC) or $(CROSS_EXTRA) is missing -- run 'make deps ARCH=$(ARCH)' as root)
  endif
endif
.DEFAULT_GOAL := all
.PHONY: cross-check cross-deps
test: cross-check
cross-check:
	@test -e /proc/sys/fs/binfmt_misc/qemu-aarch64 || { echo "ARCH=$(ARCH): no binfmt handler runs aarch64 binaries -- run 'make deps ARCH=$(ARCH)' as root"; exit 1; }
deps: cross-deps
# Root only: arm64 as a foreign dpkg architecture, the packages, the unpacked
# Criterion + lua5.4, and the binfmt handler (containers without systemd do
# not register it when qemu-user-binfmt is installed).
cross-deps:
	@set -e; if [ "$$(id -u)" != 0 ]; then echo "deps ARCH=$(ARCH): run as root (apt-get, dpkg, binfmt_misc)"; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64; apt-get update -q; fi; \
	missing=""; for p in $(CROSS_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get install -y -q --no-install-recommends$$missing || \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends$$missing; }; fi; \
	if [ ! -x $(CROSS_EXTRA)/bin/lua5.4 ]; then \
	  tmp=$$(mktemp -d); chmod 755 $$tmp; \
	  (cd $$tmp && apt-get download -q $(CROSS_DEB_UNPACK) 2>&1 | grep -v '^W: Download is performed unsandboxed' || true); \
	  for d in $$tmp/*.deb; do dpkg-deb -x $$d $$tmp/root; done; \
	  mkdir -p $(CROSS_EXTRA)/lib $(CROSS_EXTRA)/bin $(CROSS_EXTRA)/pkgconfig; \
	  cp -a $$tmp/root/usr/lib/$(CROSS_TRIPLET)/*.so* $(CROSS_EXTRA)/lib/; \
	  cp -a $$tmp/root/usr/include $(CROSS_EXTRA)/; \
	  printf '%s\n' 'prefix=$(CROSS_EXTRA)' 'Name: criterion' 'Description: Criterion 2.4.1 (arm64, unpacked)' \
	    'Version: 2.4.1' 'Libs: -L$${prefix}/lib -lcriterion -Wl,--disable-new-dtags,-rpath,$${prefix}/lib' \
	    'Cflags: -isystem $${prefix}/include' > $(CROSS_EXTRA)/pkgconfig/criterion.pc; \
	  cp $$tmp/root/usr/bin/lua5.4 $(CROSS_EXTRA)/bin/lua5.4; rm -rf $$tmp; \
	  echo "deps ARCH=$(ARCH): Criterion and lua5.4 for arm64 unpacked in $(CROSS_EXTRA)"; fi; \
	[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; \
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register; \
	echo "deps ARCH=$(ARCH): cross toolchain, arm64 libraries and qemu-aarch64 (binfmt) ready"
endif

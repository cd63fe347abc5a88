# mk/install.mk: installing dlogd, and its man page.
#
#   make install     build bin/dlogd, then install it to $(DESTDIR)$(PREFIX)/sbin, the man page to
#                    $(DESTDIR)$(PREFIX)/share/man/man8 and the systemd unit to $(DESTDIR)$(SYSTEMD_UNIT_DIR)
#                    (its ExecStart= rewritten to $(PREFIX)/sbin/dlogd) and the bash completion to
#                    $(DESTDIR)$(BASHCOMPDIR)
#   make uninstall   remove what install installed
#   make unit-check  systemd-analyze verify of packaging/dlogd.service (make test runs it): any warning fails
#   make man         write packaging/dlogd.8 from the help texts (a test fails while it is out of date)
#
# PREFIX defaults to /usr/local; DESTDIR (empty) is for staging a package; SYSTEMD_UNIT_DIR defaults
# to /lib/systemd/system. After installing the unit: systemctl daemon-reload && systemctl enable --now dlogd

# Included before the top-level Makefile's first target: keep 'all' the default goal.
install_saved_default_goal := $(.DEFAULT_GOAL)

PREFIX           ?= /usr/local
DESTDIR          ?=
SBINDIR          ?= $(PREFIX)/sbin
MANDIR           ?= $(PREFIX)/share/man
SYSTEMD_UNIT_DIR ?= /lib/systemd/system
BASHCOMPDIR      ?= $(PREFIX)/share/bash-completion/completions
INSTALL          ?= install

.PHONY: install uninstall man unit-check

install: build
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 0755 $(BIN)/dlogd $(DESTDIR)$(SBINDIR)/dlogd
	$(INSTALL) -m 0644 packaging/dlogd.8 $(DESTDIR)$(MANDIR)/man8/dlogd.8
	$(INSTALL) -m 0644 packaging/dlogd.bash-completion $(DESTDIR)$(BASHCOMPDIR)/dlogd
	sed 's|/usr/local/sbin/dlogd|$(SBINDIR)/dlogd|g' packaging/dlogd.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/dlogd.service.tmp
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/dlogd.service.tmp
	mv $(DESTDIR)$(SYSTEMD_UNIT_DIR)/dlogd.service.tmp $(DESTDIR)$(SYSTEMD_UNIT_DIR)/dlogd.service

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/dlogd $(DESTDIR)$(MANDIR)/man8/dlogd.8 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/dlogd.service $(DESTDIR)$(BASHCOMPDIR)/dlogd

# The unit as installed, its ExecStart= pointing at the dlogd just built (verify checks that the
# command exists). systemd-analyze exits 0 on most warnings (unknown keys, bad values): any output fails.
unit-check: build
	@command -v systemd-analyze >/dev/null || { echo "unit-check: systemd-analyze not found (apt-get install systemd)"; exit 1; }
	@tmp=$$(mktemp -d); \
	sed 's|/usr/local/sbin/dlogd|$(CURDIR)/$(BIN)/dlogd|g' packaging/dlogd.service > $$tmp/dlogd.service; \
	out=$$(systemd-analyze verify --man=no $$tmp/dlogd.service 2>&1); rc=$$?; rm -rf $$tmp; \
	if [ $$rc -ne 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "!! unit-check: packaging/dlogd.service does not verify"; exit 1; fi; \
	echo "unit-check: packaging/dlogd.service verifies"

man:
	$(GO) test -count=1 -run '^TestManPage$$' ./cmd/dlogd -args -update-man

.DEFAULT_GOAL := $(install_saved_default_goal)

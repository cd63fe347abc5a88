# mk/deb.mk: a Debian package of dlogd.
#
#   make deb        build/deb/dlogd_$(DEB_VERSION)_$(DEB_ARCH).deb from `make install DESTDIR=` (PREFIX=/usr),
#                   with dpkg-deb; no debhelper, no network
#   make deb-test   build it, check its contents, unpack it and run the packaged dlogd: --version, serve
#                   (unix transport), status, a clean stop (scripts/deb-test.sh)
#
# DEB_VERSION defaults to 0.0~git<commit date>.<short hash> (the repository has no release tags yet).

deb_saved_default_goal := $(.DEFAULT_GOAL)

DEB_VERSION ?= 0.0~git$(shell git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null).$(shell git rev-parse --short HEAD 2>/dev/null)
DEB_ARCH    ?= $(shell dpkg --print-architecture 2>/dev/null || $(GO) env GOARCH)
DEB_DIR     := $(BUILD)/deb
DEB_FILE    := $(DEB_DIR)/dlogd_$(DEB_VERSION)_$(DEB_ARCH).deb

.PHONY: deb deb-test

deb:
	@command -v dpkg-deb >/dev/null || { echo "deb: dpkg-deb not found (apt-get install dpkg)"; exit 1; }
	rm -rf $(DEB_DIR)/root
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEB_DIR)/root PREFIX=/usr SYSTEMD_UNIT_DIR=/lib/systemd/system \
		VERSION=$(DEB_VERSION)
	gzip -9n $(DEB_DIR)/root/usr/share/man/man8/dlogd.8
	install -d $(DEB_DIR)/root/DEBIAN $(DEB_DIR)/root/usr/share/doc/dlogd
	install -m 0644 README.md $(DEB_DIR)/root/usr/share/doc/dlogd/README.md
	sed -e 's/@VERSION@/$(DEB_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
		-e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_DIR)/root | cut -f1)/" packaging/deb/control > $(DEB_DIR)/root/DEBIAN/control
	install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm $(DEB_DIR)/root/DEBIAN/
	dpkg-deb --root-owner-group -Zxz --build $(DEB_DIR)/root $(DEB_FILE)
	@echo "deb: $(DEB_FILE)"

deb-test: deb
	sh scripts/deb-test.sh $(DEB_FILE)

.DEFAULT_GOAL := $(deb_saved_default_goal)

# make install / uninstall / deb: included from the top-level Makefile.
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   programs, man pages, models,
#                                                 examples, systemd units
#   make uninstall [PREFIX=...] [DESTDIR=]        removes exactly what install wrote
#   make deb                                      $(BUILD)/aiserve_VERSION_ARCH.deb
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man/man1
DATADIR = $(PREFIX)/share/aiserve
UNITDIR = $(PREFIX)/lib/systemd/system
INSTALL ?= install

INSTALL_PROGS := aiserve aiinfer aiload
INSTALL_MANS := man/aiserve.1 man/aiinfer.1 man/aiload.1
INSTALL_MODELS := models/mobilenetv2-160.onnx models/digits.onnx models/digits.labels.txt
INSTALL_UNITS := deploy/systemd/aiserve.service deploy/systemd/aiserve.socket
# Examples are installed as the repository has them; the list comes from git
# when there is one, so untracked files never ship.
INSTALL_EXAMPLES = $(shell git ls-files examples 2>/dev/null || find examples -type f)

.PHONY: install install-bin install-data uninstall deb
install: install-bin install-data

install-bin: $(addprefix $(BUILD)/,$(INSTALL_PROGS))
	$(INSTALL) -d $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 755 $^ $(DESTDIR)$(BINDIR)/

# Data needs no compiler: the container's build stage installs it beside the
# programs, and packaging reuses it.
install-data:
	$(INSTALL) -d $(DESTDIR)$(MANDIR) $(DESTDIR)$(DATADIR)/models $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 644 $(INSTALL_MANS) $(DESTDIR)$(MANDIR)/
	$(INSTALL) -m 644 $(INSTALL_MODELS) $(DESTDIR)$(DATADIR)/models/
	$(INSTALL) -m 644 deploy/container/container.ini $(DESTDIR)$(DATADIR)/container.ini
	$(INSTALL) -m 644 $(INSTALL_UNITS) $(DESTDIR)$(UNITDIR)/
	for f in $(INSTALL_EXAMPLES); do \
		$(INSTALL) -D -m 644 $$f $(DESTDIR)$(DATADIR)/$$f || exit 1; done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_PROGS))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/,$(notdir $(INSTALL_MANS)))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(INSTALL_UNITS)))
	rm -rf $(DESTDIR)$(DATADIR)

# A binary package for Debian 12: the files of `make install PREFIX=/usr` and
# a control file whose Depends are the runtime libraries the programs load.
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_FILE = $(BUILD)/aiserve_$(VERSION)_$(DEB_ARCH).deb
deb: $(addprefix $(BUILD)/,$(INSTALL_PROGS))
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/DEBIAN
	$(MAKE) --no-print-directory install BUILD=$(BUILD) PREFIX=/usr DESTDIR=$(abspath $(BUILD)/deb)
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
		-e "s/@SIZE@/$$(du -sk $(BUILD)/deb/usr | cut -f1)/" \
		deploy/debian/control.in > $(BUILD)/deb/DEBIAN/control
	dpkg-deb --root-owner-group -Zgzip --build $(BUILD)/deb $(DEB_FILE)
	@echo "deb: $(DEB_FILE)"

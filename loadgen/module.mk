# loadgen: the aiload load tester.
loadgen_PKGS :=
loadgen_LDLIBS :=
loadgen_DEPS := lib
loadgen_PROG := aiload
# web UI assets embedded at build time (rule owned by the web UI)
include loadgen/web/web.mk

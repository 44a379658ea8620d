# loadgen: the aiload load tester.
loadgen_PKGS :=
loadgen_LDLIBS :=
loadgen_DEPS := lib
loadgen_PROG := aiload

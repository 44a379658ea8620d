# loadgen: the aiload load tester.
# openssl: https:// targets (loadgen/tls.c); libzmq + msgpack: distributed mode (loadgen/dist)
loadgen_PKGS := openssl libzmq msgpack
loadgen_LDLIBS :=
loadgen_DEPS := lib
loadgen_PROG := aiload
# web UI assets embedded at build time (rule owned by the web UI)
include loadgen/webui/web/web.mk
# Python locustfiles (rule owned by the Python mode)
include loadgen/py/py.mk

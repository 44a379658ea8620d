# server: the aiserve core (process model, HTTP, routes, built-ins, config).
# It knows no app kind: server/wsgi and server/model are modules of their own,
# and server/main.c hands the kinds to the core (srv.kinds). So the core and
# its tests link without CPython, oneDNN or libjpeg (scripts/check-layers.sh).
# sd_notify and socket activation (server/sysd.c)
server_PKGS := libsystemd
# https listeners (server/tls.c)
server_PKGS += openssl
server_LDLIBS :=
server_DEPS := lib
server_PROG := aiserve
# the program links the app kinds too (wsgi needs model, both need the core)
server_PROG_DEPS := wsgi model

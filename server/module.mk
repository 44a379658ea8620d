# server: the aiserve application server.
server_PKGS :=
server_PKGS += libjpeg libpng
server_PKGS += python3-embed
# sd_notify and socket activation (server/sysd.c)
server_PKGS += libsystemd
# https listeners (server/tls.c)
server_PKGS += openssl
server_LDLIBS :=
server_DEPS := engine lib
server_PROG := aiserve

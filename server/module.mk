# server: the aiserve application server.
server_PKGS :=
server_PKGS += libjpeg libpng
server_PKGS += python3-embed
server_LDLIBS :=
server_DEPS := engine lib
server_PROG := aiserve

# server: the aiserve application server.
server_PKGS :=
server_LDLIBS :=
server_DEPS := engine lib
server_PROG := aiserve

# lib: leaf code shared by the programs (libc/POSIX only).
lib_PKGS :=
lib_DEPS :=

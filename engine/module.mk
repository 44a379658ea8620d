# engine: the ONNX inference engine (libengine.a) and the aiinfer CLI (engine/main.c).
engine_PKGS :=
engine_LDLIBS :=
engine_DEPS := lib
engine_PROG := aiinfer

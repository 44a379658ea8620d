# engine: the ONNX inference engine (libengine.a) and the aiinfer CLI (engine/main.c).
# engine/generated/onnx.pb-c.[ch] come from `protoc-c --c_out=engine/generated
# -I/usr/include/onnx onnx.proto` (Debian libonnx-dev); tools/gen-onnx-proto.sh
# regenerates them. They are committed so a build needs only libprotobuf-c.
engine_PKGS := libprotobuf-c
engine_LDLIBS := -ldnnl -lgomp
engine_DEPS := lib
engine_PROG := aiinfer

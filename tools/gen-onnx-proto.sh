#!/bin/sh
# Regenerates engine/generated/onnx.pb-c.[ch] from Debian's onnx.proto
# (libonnx-dev) with protoc-c (protobuf-c-compiler). The output is committed so
# that building needs only libprotobuf-c; the format check skips generated/.
set -eu
cd "$(dirname "$0")/.."
proto=/usr/include/onnx/onnx.proto
[ -f "$proto" ] || { echo "missing $proto: apt-get install libonnx-dev" >&2; exit 1; }
protoc-c --c_out=engine/generated -I"$(dirname "$proto")" "$proto"
echo "regenerated engine/generated/onnx.pb-c.c and .h"

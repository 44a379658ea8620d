# model: the model app kind (ONNX over KServe v2 on the engine, image inputs via
# libjpeg/libpng, the batcher); the only server module that includes
# engine/engine.h.
model_PKGS := libjpeg libpng
model_LDLIBS :=
model_DEPS := server engine lib

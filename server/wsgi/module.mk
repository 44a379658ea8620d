# wsgi: the WSGI app kind (embedded CPython); the only module that includes
# Python.h. It depends on the model kind's public API (server/model/api.h,
# kserve.h): the `aiserve` Python module runs the server's models in process
# (aiserve.infer). Never the other way round: model knows nothing of Python.
wsgi_PKGS := python3-embed
wsgi_LDLIBS :=
wsgi_DEPS := model server engine lib

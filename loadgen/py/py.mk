# aiload's Python locustfile mode: CPython embedded (python3-embed) and the
# `locust` package compiled into the binary. Included from loadgen/module.mk.
loadgen_PKGS += python3-embed
loadgen_PY_FILES := $(sort $(shell find loadgen/py/locust -name '*.py'))
loadgen_GEN_SRCS += $(BUILD)/gen/loadgen/py_sources.c

$(BUILD)/gen/loadgen/py_sources.c: loadgen/py/embed.py loadgen/py/py.mk $(loadgen_PY_FILES)
	@mkdir -p $(@D)
	/usr/bin/python3 loadgen/py/embed.py $@ loadgen/py $(loadgen_PY_FILES)

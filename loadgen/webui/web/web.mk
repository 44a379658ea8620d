# aiload web UI: the page's files (and uPlot from npm) become a generated C table
# compiled into libloadgen.a, so nothing is fetched from disk, a CDN or the network
# at run time. Included from loadgen/module.mk.
loadgen_WEB_MAP := /=loadgen/web/index.html \
	/app.css=loadgen/web/app.css \
	/app.js=loadgen/web/app.js \
	/common.js=loadgen/web/common.js \
	/report.js=loadgen/web/report.js \
	/favicon.svg=loadgen/web/favicon.svg \
	/uplot.js=node_modules/uplot/dist/uPlot.iife.min.js \
	/uplot.css=node_modules/uplot/dist/uPlot.min.css
loadgen_WEB_FILES := $(foreach p,$(loadgen_WEB_MAP),$(lastword $(subst =, ,$(p))))
loadgen_GEN_SRCS += $(BUILD)/gen/loadgen/webui_assets.c

$(BUILD)/gen/loadgen/webui_assets.c: loadgen/web/embed.py loadgen/web/web.mk $(loadgen_WEB_FILES)
	@mkdir -p $(@D)
	/usr/bin/python3 loadgen/web/embed.py $@ $(loadgen_WEB_MAP)

node_modules/uplot/dist/%:
	@echo "missing $@: the web UI embeds uPlot from npm; run scripts/install-deps.sh" >&2; exit 1

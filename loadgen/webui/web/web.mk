# aiload web UI: the page's files (and uPlot from npm) become a generated C table
# compiled into libloadgen.a, so nothing is fetched from disk, a CDN or the network
# at run time. Included from loadgen/module.mk.
loadgen_WEB_MAP := /=loadgen/webui/web/index.html \
	/app.css=loadgen/webui/web/app.css \
	/app.js=loadgen/webui/web/app.js \
	/common.js=loadgen/webui/web/common.js \
	/report.js=loadgen/webui/web/report.js \
	/favicon.svg=loadgen/webui/web/favicon.svg \
	/uplot.js=node_modules/uplot/dist/uPlot.iife.min.js \
	/uplot.css=node_modules/uplot/dist/uPlot.min.css
loadgen_WEB_FILES := $(foreach p,$(loadgen_WEB_MAP),$(lastword $(subst =, ,$(p))))
loadgen_GEN_SRCS += $(BUILD)/gen/loadgen/webui_assets.c

$(BUILD)/gen/loadgen/webui_assets.c: loadgen/webui/web/embed.py loadgen/webui/web/web.mk $(loadgen_WEB_FILES)
	@mkdir -p $(@D)
	/usr/bin/python3 loadgen/webui/web/embed.py $@ $(loadgen_WEB_MAP)

node_modules/uplot/dist/%:
	@echo "missing $@: the web UI embeds uPlot from npm; run scripts/install-deps.sh" >&2; exit 1

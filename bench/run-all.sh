#!/usr/bin/env bash
# make bench: every benchmark, each against its peers in the same run, one after
# the other (never in parallel: they would measure each other). Each prints its
# own table of medians and ratios; a quiet machine gives the meaningful figures.
# BENCH="server loadgen" limits the set.
set -uo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
sets=${BENCH:-engine server server-conn loadgen model wsgi uwsgi webui}
rc=0
for s in $sets; do
    echo
    echo "################ bench/$s"
    case $s in
    engine) $py bench/engine/run.py ;;
    server) $py bench/server/run.py --aiserve build/aiserve ;;
    server-conn) $py bench/server/conn.py --aiserve build/aiserve ;;
    loadgen) $py bench/loadgen/run.py --build build ;;
    model) $py bench/model/run.py --build build ;;
    wsgi) $py bench/wsgi/run.py --app all --aiserve build/aiserve; w=$?; $py bench/wsgi/native.py --build build && [ $w -eq 0 ] ;;
    uwsgi) $py bench/uwsgi/run.py --aiserve build/aiserve ;;
    webui) $py bench/webui/run.py --aiload build/aiload ;;
    *) echo "unknown benchmark set '$s'"; rc=2 ;;
    esac || rc=1
done
exit $rc

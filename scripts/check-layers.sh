#!/usr/bin/env bash
# check-layers.sh [ROOT]: fails (exit 1, one line per offending #include) when
# a file includes across a layer it must not (docs/ARCHITECTURE.md, "Modules"):
#   lib/            only lib/ headers: leaf code of every program
#   engine/         lib/ and engine/ only
#   server/ (core)  never server/wsgi/, server/model/, engine/ or loadgen/: the
#                   core reaches the app kinds only through the table main.c
#                   hands it (srv.kinds), so it links without CPython, oneDNN
#                   or libjpeg. server/main.c, the program, picks the kinds.
#   server/model/   the only server folder with engine/ headers; never wsgi/
#   server/wsgi/    may use the model kind's API (aiserve.infer), not engine/
#   loadgen/        never server/ or engine/ (aiload is a program of its own)
#   Python.h        only in server/wsgi/ and loadgen/py/ (aiload's locustfiles)
#   fuzz/M_x.c      the rules of module M (server, model, wsgi, lib, ...)
# Run by scripts/run-tests.sh; tests/build/test_check_layers.py proves it fails.
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

# The layer of a file: lib, engine, core, main, model, wsgi, loadgen, loadgen-py.
layer_of() {
    case $1 in
    server/main.c) echo main ;;
    server/wsgi/* | fuzz/wsgi_*) echo wsgi ;;
    server/model/* | fuzz/model_*) echo model ;;
    server/* | fuzz/server_*) echo core ;;
    lib/* | fuzz/lib_*) echo lib ;;
    engine/* | fuzz/engine_*) echo engine ;;
    loadgen/py/*) echo loadgen-py ;;
    loadgen/* | fuzz/loadgen_*) echo loadgen ;;
    *) echo other ;;
    esac
}

# Why file ($1, layer $2) may not include header ($3); empty: it may.
forbidden() {
    local layer=$2 inc=$3
    if [ "$inc" = Python.h ]; then
        case $layer in wsgi | loadgen-py) return ;; esac
        echo "Python.h outside server/wsgi/ and loadgen/py/"
        return
    fi
    case $layer in
    lib)
        case $inc in lib/*) ;; */*) echo "lib/ includes a program's header" ;; esac ;;
    engine)
        case $inc in lib/* | engine/*) ;; server/* | loadgen/*) echo "engine/ includes a program's header" ;; esac ;;
    core)
        case $inc in
        server/wsgi/* | server/model/*) echo "the server core includes an app kind (main.c hands them over)" ;;
        engine/*) echo "the server core includes the engine (only server/model/ may)" ;;
        loadgen/*) echo "the server includes aiload's code" ;;
        esac ;;
    model)
        case $inc in
        server/wsgi/*) echo "the model kind includes the WSGI kind (wsgi depends on model, not back)" ;;
        loadgen/*) echo "the server includes aiload's code" ;;
        esac ;;
    wsgi | main)
        case $inc in
        engine/*) echo "only server/model/ includes the engine" ;;
        loadgen/*) echo "the server includes aiload's code" ;;
        esac ;;
    loadgen | loadgen-py)
        case $inc in server/* | engine/*) echo "aiload includes another program's header" ;; esac ;;
    esac
}

bad=0
files=0
while IFS= read -r f; do
    files=$((files + 1))
    layer=$(layer_of "$f")
    [ "$layer" = other ] && continue
    # "line:header" for quoted includes (the project's), "line:<header>" for system ones
    while IFS=: read -r line inc; do
        case $inc in
        "<Python.h>") inc=Python.h ;;
        "<"*) continue ;;
        esac
        why=$(forbidden "$f" "$layer" "$inc")
        if [ -n "$why" ]; then
            echo "check-layers: $f:$line: #include $inc: $why"
            bad=$((bad + 1))
        fi
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$f" |
        sed -E -e 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1:\2/' \
            -e 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*<([^>]+)>.*/\1:<\2>/')
done < <(find lib engine server loadgen fuzz -name '*.[ch]' 2>/dev/null | sort)

if [ "$bad" -gt 0 ]; then
    echo "check-layers: $bad include(s) cross a layer (rules: scripts/check-layers.sh)"
    exit 1
fi
echo "check-layers: ok ($files files)"

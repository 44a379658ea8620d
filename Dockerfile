# aiserve container image: a build stage with the -dev packages, a runtime
# stage with only the shared libraries the three programs load.
#
#   podman build -t aiserve .                 (or docker build)
#   podman run --rm -p 8000:8000 aiserve      serves the bundled models on :8000
#   podman build --target aiload -t aiload .  the load tester alone
#
# Run scripts/install-deps.sh first: the build context carries uPlot from
# node_modules for the aiload web UI. The base is Debian 12 slim;
# scripts/container-test.sh builds one with
# debootstrap where no registry can be reached.
ARG BASE=debian:12-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      build-essential pkg-config python3-dev libdnnl-dev libprotobuf-c-dev \
      libssl-dev libjpeg62-turbo-dev libpng-dev libsystemd-dev libzmq3-dev libmsgpack-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" aiserve aiinfer aiload \
 && make install-bin install-data DESTDIR=/out PREFIX=/usr

# The runtime libraries of the programs (see `ldd build/aiserve build/aiload`):
# oneDNN and its OpenMP, protobuf-c, libjpeg-turbo, libpng, OpenSSL, libsystemd,
# ZeroMQ and msgpack-c (aiload's distributed mode), and CPython 3.11 for WSGI
# apps and Python locustfiles. curl serves the HEALTHCHECK.
FROM ${BASE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libdnnl2 libgomp1 libprotobuf-c1 libjpeg62-turbo libpng16-16 libssl3 libsystemd0 \
      libzmq5 libmsgpackc2 \
      libpython3.11 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin aiserve

FROM runtime AS aiload
# gevent schedules the users of Python locustfiles (aiload -f locustfile.py); pyzmq and
# msgpack carry a Python locustfile worker's messages (--worker)
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3-gevent python3-zmq python3-msgpack \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/bin/aiload /usr/bin/aiload
USER 10001
ENTRYPOINT ["aiload"]
CMD ["--help"]

# The default target comes last: `podman build .` gives the server image.
FROM runtime AS aiserve
COPY --from=build /out/usr/ /usr/
USER 10001
WORKDIR /usr/share/aiserve
EXPOSE 8000
# The master is PID 1: it reaps every child and drains on SIGTERM (in-flight
# requests finish, then it exits 0), so no init is needed.
STOPSIGNAL SIGTERM
# container.ini puts the built-ins on an admin listener (127.0.0.1:9191), so an
# app mounted at / cannot shadow /health/ready; set HEALTHCHECK_URL when moving it.
ENV HEALTHCHECK_URL=http://127.0.0.1:9191/health/ready
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD curl -fsS "$HEALTHCHECK_URL" || exit 1
ENTRYPOINT ["aiserve"]
CMD ["/usr/share/aiserve/container.ini"]

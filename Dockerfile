# syntax=docker/dockerfile:1
#
# msgprobe for volunteers: a non-root, shell-less image that runs with a
# read-only root filesystem; its only state (the evidence log) lives in the
# /var/lib/msgprobe volume. deploy/README.md has the one-line `docker run`
# and the compose file with the Prometheus agent.
#
#   docker build -t msgprobe:local .
#
# Two stages. The build stage is Debian 12 with its own Python 3.11 and
# makes a virtualenv; the runtime stage is Google's distroless Python image,
# which is that same Debian 12 Python 3.11 and nothing else (no shell, no
# package manager), so the virtualenv runs there unchanged. The image is
# 81 MB (measured by scripts/container/run), where a python:slim base alone
# is about 120 MB; the raw-packet variant is 109 MB:
#
#   docker build --build-arg EXTRAS="[raw]" -t msgprobe:raw .
#
# which runs as uid 0 holding NET_RAW alone (`--user 0:65532 --cap-drop ALL
# --cap-add NET_RAW`; deploy/README.md, "Raw-packet checks", says why).

ARG BUILD_IMAGE=debian:12-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
# A failed ldd or ldconfig in a pipe below must fail the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian stable's python3-venv: its version is the runtime image's Python,
# which is the point; pinning a Debian revision here would only break builds.
# binutils only for `strip` below.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends --no-install-suggests python3-venv binutils \
 && rm -rf /var/lib/apt/lists/*
# EXTRAS="[raw]" adds scapy for the raw-packet checks, and scapy compiles
# their capture filters with libpcap, which the runtime image lacks: without
# it every raw check reports "needs libpcap". So the raw variant takes
# libpcap and the libraries it loads (libdbus, and through it libsystemd's
# closure) from this stage, leaving out libc, which the runtime has. Each
# is copied to its real path (here /lib is a link into /usr): copying a
# /lib directory over the runtime's /lib would fail or shadow it.
# Python's ctypes.util.find_library, which scapy asks for "pcap", reads the
# answer from `/sbin/ldconfig -p`: distroless has neither ldconfig nor an
# ld.so.cache, so both come along (ldconfig is static, one file; the cache,
# made against exactly the copied tree, names only what was copied, and the
# loader finds everything else in its default directories as before).
# Without raw the three trees stay empty and the runtime gets nothing.
ARG EXTRAS=""
# hadolint ignore=DL3008
RUN mkdir -p /rootfs-raw/usr/lib /rootfs-raw/sbin /rootfs-raw/etc \
 && case "${EXTRAS}" in *raw*) \
      apt-get update \
      && apt-get install --yes --no-install-recommends --no-install-suggests libpcap0.8 \
      && rm -rf /var/lib/apt/lists/* \
      && pcap="$(echo /usr/lib/*/libpcap.so.0.8)" \
      && needed="$(ldd "${pcap}" | awk '$2 == "=>" && $3 ~ /^\// && $1 != "libc.so.6" {print $3}')" \
      && for lib in "${pcap}" ${needed}; do \
           dir="$(readlink -f "$(dirname "${lib}")")" \
           && mkdir -p "/rootfs-raw${dir}" \
           && cp -a "${dir}/$(basename "${lib}")" "$(readlink -f "${lib}")" "/rootfs-raw${dir}/" || exit 1; \
         done \
      && cp "$(readlink -f /sbin/ldconfig)" /rootfs-raw/sbin/ldconfig \
      && ldconfig -r /rootfs-raw \
      && ldconfig -r /rootfs-raw -p | grep 'libpcap\.so\.0\.8 ' >/dev/null ;; \
    esac
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/msgprobe
WORKDIR /src
# Only what the package needs (see .dockerignore); config/ is the data the
# package embeds through the probe/data symlink.
COPY pyproject.toml README.md ./
COPY config/ config/
COPY probe/ probe/
# pip compiles the bytecode now, because the running container cannot write
# it. The wheels' extension modules carry their debug symbols: stripping them
# takes ~14 MB off the image (measured: 94.6 -> 81 MB).
RUN /opt/msgprobe/bin/pip install ".${EXTRAS}" \
 && /opt/msgprobe/bin/pip uninstall --yes pip setuptools \
 && find /opt/msgprobe -name '*.so' -exec strip --strip-unneeded {} + \
 && /opt/msgprobe/bin/msgprobe check-config config/probe.yaml
COPY deploy/docker/entrypoint.py /opt/msgprobe/entrypoint.py
# A clone made under umask 077 has 0600 files, which COPY keeps (the legacy
# builder has no COPY --chmod) and pip may carry into the virtualenv: the
# runtime user could not read them. Everything the runtime stage gets is
# made readable by all, its directories traversable.
# The raw variant runs as uid 0 with NET_RAW alone (deploy/README.md, "Raw-
# packet checks"): uid 0 without DAC_OVERRIDE may write only where its
# group, 65532, may, so there the state volume's mount point is group-
# writable (a fresh named volume takes this mode). The default stays 0755.
RUN chmod -R a+rX /opt/msgprobe \
 && mkdir -p /rootfs/var/lib/msgprobe /rootfs/etc/msgprobe \
 && case "${EXTRAS}" in *raw*) chmod 0775 /rootfs/var/lib/msgprobe ;; esac

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="msgprobe" \
      org.opencontainers.image.description="Messenger reachability probe for censorship measurement" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
COPY --from=build /opt/msgprobe /opt/msgprobe
# The config directory (a config may be mounted there) and the state
# volume's mount point, owned by the distroless "nonroot" user (uid 65532)
# so that a fresh named volume is writable by it (and, in the raw variant,
# by its group: see the build stage). The mount point comes with its parent:
# a COPY of the directory itself makes it 0755 whatever its mode was, and
# --chown leaves the runtime's existing /var/lib as it is.
COPY --from=build /rootfs/etc/msgprobe /etc/msgprobe
COPY --from=build --chown=65532:65532 /rootfs/var/lib/ /var/lib/
# libpcap for the raw variant (empty otherwise: see the build stage). /sbin
# is followed if it is a link, as it is in a merged /usr.
COPY --from=build /rootfs-raw/usr/lib/ /usr/lib/
COPY --from=build /rootfs-raw/sbin/ /sbin/
COPY --from=build /rootfs-raw/etc/ /etc/
ENV PATH=/opt/msgprobe/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
WORKDIR /var/lib/msgprobe
VOLUME ["/var/lib/msgprobe"]
EXPOSE 9490
# No curl in a distroless image: Python asks /-/healthy itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/opt/msgprobe/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9490/-/healthy', timeout=4)"]
ENTRYPOINT ["/opt/msgprobe/bin/python", "/opt/msgprobe/entrypoint.py"]

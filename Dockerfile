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
# is about 120 MB.

ARG BUILD_IMAGE=debian:12-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
# Debian stable's python3-venv: its version is the runtime image's Python,
# which is the point; pinning a Debian revision here would only break builds.
# binutils only for `strip` below.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends --no-install-suggests python3-venv binutils \
 && rm -rf /var/lib/apt/lists/*
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
# it. EXTRAS="[raw]" adds scapy, for the raw-packet checks still to come.
# The wheels' extension modules carry their debug symbols: stripping them
# takes ~14 MB off the image (measured: 94.6 -> 81 MB).
ARG EXTRAS=""
RUN /opt/msgprobe/bin/pip install ".${EXTRAS}" \
 && /opt/msgprobe/bin/pip uninstall --yes pip setuptools \
 && find /opt/msgprobe -name '*.so' -exec strip --strip-unneeded {} + \
 && /opt/msgprobe/bin/msgprobe check-config config/probe.yaml
COPY deploy/docker/entrypoint.py /opt/msgprobe/entrypoint.py
# A clone made under umask 077 has 0600 files, which COPY keeps (the legacy
# builder has no COPY --chmod) and pip may carry into the virtualenv: the
# runtime user could not read them. Everything the runtime stage gets is
# made readable by all, its directories traversable.
RUN chmod -R a+rX /opt/msgprobe \
 && mkdir -p /rootfs/var/lib/msgprobe /rootfs/etc/msgprobe

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="msgprobe" \
      org.opencontainers.image.description="Messenger reachability probe for censorship measurement" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
COPY --from=build /opt/msgprobe /opt/msgprobe
# The config directory (a config may be mounted there) and the state
# volume's mount point, owned by the distroless "nonroot" user (uid 65532)
# so that a fresh named volume is writable by it.
COPY --from=build /rootfs/etc/msgprobe /etc/msgprobe
COPY --from=build --chown=65532:65532 /rootfs/var/lib/msgprobe /var/lib/msgprobe
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

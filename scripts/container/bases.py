"""Stand-ins for the base images, made from Debian packages.

No container registry is reachable here, so the images the Dockerfile and
the compose file name are made locally, as close to the real ones as the
test needs:

- `debian:12-slim` (the build stage): debootstrap's minbase bookworm, with
  the machine's apt sources (bookworm, -updates, -security: the runtime's
  Python must be the build stage's) and its local CA certificates, which
  pip needs to verify the package index through this network's proxy.
- `gcr.io/distroless/python3-debian12:nonroot` (the runtime): distroless's
  own package list unpacked into a usr-merged tree, nonroot 65532, no shell,
  no package manager.
- `prom/prometheus` (the agent): Debian's prometheus binary on that runtime
  tree, running as nobody (65534) like the official image.

A cold run makes them (~1 min); `docker save` keeps them in the cache dir,
keyed by this file and the inputs it copies, for the next run.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from scripts.container.engine import Engine
from scripts.container.steps import log, run

SUITE = "bookworm"
DEBIAN = "local/debian:bookworm"
BUILD_IMAGE = "local/debian:12-slim-ci"
RUNTIME_IMAGE = "local/distroless-python3-debian12:nonroot-ci"
AGENT_IMAGE = "local/prometheus:agent-ci"
IMAGES = (DEBIAN, BUILD_IMAGE, RUNTIME_IMAGE, AGENT_IMAGE)

APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PROMETHEUS = Path("/usr/bin/prometheus")

# gcr.io/distroless/python3-debian12's packages (its base, cc and python3
# layers, with the libraries libpython3.11-stdlib links against).
DISTROLESS_PACKAGES = [
    "base-files",
    "netbase",
    "tzdata",
    "media-types",
    "libc6",
    "libssl3",
    "ca-certificates",
    "libgcc-s1",
    "libgomp1",
    "libstdc++6",
    "libbz2-1.0",
    "libcrypt1",
    "libdb5.3",
    "libexpat1",
    "libffi8",
    "liblzma5",
    "libncursesw6",
    "libnsl2",
    "libreadline8",
    "readline-common",
    "libsqlite3-0",
    "libtinfo6",
    "libtirpc3",
    "libtirpc-common",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libcom-err2",
    "libkrb5support0",
    "libkeyutils1",
    "libuuid1",
    "zlib1g",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "python3.11-minimal",
]

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"


def mirror() -> str:
    for line in APT_SOURCES.read_text().splitlines():
        if line.startswith("URIs:"):
            return line.split()[1]
    raise RuntimeError(f"no URIs: in {APT_SOURCES}")


def cache_key() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in (APT_SOURCES, PROMETHEUS, *sorted(LOCAL_CAS.glob("*.crt"))):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure(engine: Engine, work: Path, cache: Path) -> str:
    """Load the stand-ins from the cache, or make them; "cached" or "made"."""
    saved = cache / f"base-images-{cache_key()}.tar"
    if saved.is_file():
        engine.docker("load", "--input", saved, timeout=180)
        return "cached"
    make_debian(engine, work / "debootstrap")
    make_build_image(engine, work / "build-image")
    make_runtime_image(engine, work / "runtime-image")
    make_agent_image(engine, work / "agent-image")
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("base-images-*.tar"):
        old.unlink()
    partial = saved.with_suffix(".partial")
    engine.docker("save", "--output", partial, *IMAGES, timeout=180)
    partial.rename(saved)
    return "made"


def make_debian(engine: Engine, root: Path) -> None:
    run(["debootstrap", "--variant=minbase", SUITE, root, mirror()], timeout=300)
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()  # what debootstrap installed from; the images never need them
    _import_tree(engine, root, DEBIAN)


def make_build_image(engine: Engine, ctx: Path) -> None:
    (ctx / "ca").mkdir(parents=True)
    shutil.copy(APT_SOURCES, ctx / "debian.sources")
    for crt in LOCAL_CAS.glob("*.crt"):
        shutil.copy(crt, ctx / "ca" / crt.name)
    (ctx / "Dockerfile").write_text(
        f"FROM {DEBIAN}\n"
        "COPY debian.sources /etc/apt/sources.list.d/debian.sources\n"
        "COPY ca/ /usr/local/share/ca-certificates/\n"
        "RUN rm -f /etc/apt/sources.list \\\n"
        " && apt-get update -qq \\\n"
        " && apt-get install -qq --yes --no-install-recommends ca-certificates >/dev/null \\\n"
        " && update-ca-certificates \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        f"ENV PIP_CERT={CA_BUNDLE}\n"
    )
    engine.docker("build", "--network", "host", "--quiet", "-t", BUILD_IMAGE, ctx, timeout=300)


def make_runtime_image(engine: Engine, work: Path) -> None:
    debs = work / "debs"
    tree = work / "rootfs"
    debs.mkdir(parents=True)
    run(["apt-get", "download", "-qq", *DISTROLESS_PACKAGES], cwd=debs, timeout=180)
    # Debian 12 is usr-merged: /bin, /lib… are links into /usr; keep them links.
    for d in ("usr/bin", "usr/lib", "usr/lib64", "usr/sbin"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    for d in ("bin", "lib", "lib64", "sbin"):
        (tree / d).symlink_to(f"usr/{d}")
    for deb in sorted(debs.glob("*.deb")):
        run(["bash", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -x --keep-directory-symlink -C {tree}"])
    shutil.rmtree(debs)
    (tree / "usr/bin/python3").symlink_to("python3.11")
    (tree / "etc/passwd").write_text(PASSWD)
    (tree / "etc/group").write_text(GROUP)
    (tree / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    shutil.copy(CA_BUNDLE, tree / "etc/ssl/certs/ca-certificates.crt")
    (tree / "tmp").mkdir(exist_ok=True)
    (tree / "tmp").chmod(0o1777)
    (tree / "home/nonroot").mkdir(parents=True)
    shutil.chown(tree / "home/nonroot", 65532, 65532)
    for shell in ("bin/sh", "bin/bash", "bin/dash", "bin/busybox"):
        if (tree / shell).exists():
            raise RuntimeError(f"the distroless stand-in must have no shell, found /{shell}")
    _import_tree(
        engine,
        tree,
        RUNTIME_IMAGE,
        "USER 65532:65532",
        "WORKDIR /home/nonroot",
        f"ENV SSL_CERT_FILE={CA_BUNDLE}",
        'ENTRYPOINT ["/usr/bin/python3.11"]',
    )


def make_agent_image(engine: Engine, ctx: Path) -> None:
    ctx.mkdir(parents=True)
    shutil.copy(PROMETHEUS, ctx / "prometheus")
    (ctx / "wal").mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {RUNTIME_IMAGE}\n"
        "COPY prometheus /usr/bin/prometheus\n"
        # The official image's /prometheus belongs to nobody, so a fresh
        # named volume there (agent-wal) is writable by the agent.
        "COPY --chown=65534:65534 wal /prometheus\n"
        "USER 65534:65534\n"
        "WORKDIR /prometheus\n"
        'ENTRYPOINT ["/bin/prometheus"]\n'
    )
    engine.docker("build", "--quiet", "-t", AGENT_IMAGE, ctx, timeout=120)


def _import_tree(engine: Engine, tree: Path, tag: str, *changes: str) -> None:
    tar = tree.with_suffix(".tar")
    run(["tar", "--numeric-owner", "-C", tree, "-cf", tar, "."], timeout=120)
    args: list[str | Path] = ["import"]
    for change in changes:
        args += ["--change", change]
    engine.docker(*args, tar, tag, timeout=120)
    shutil.rmtree(tree)
    tar.unlink()
    log(f"{tag}: {engine.docker('image', 'inspect', '-f', '{{.Size}}', tag).stdout.strip()} bytes")

"""Registry-free images that the bento images start from, made from Debian and PyPI packages only.

- the base (default `langdetect-base:bookworm-py3.11-runtime`): `debootstrap --variant=minbase`
  plus Debian's python3.11, passwd (BentoML's Dockerfile runs groupadd/useradd) and
  ca-certificates, with security updates, flattened into one layer with `tar | docker import`. It
  is a runtime, not a build environment (as distroless images are): no docs, man pages,
  translations, package manager (apt, dpkg, perl, debconf), glibc charset converters, or bytecode
  for the standard library (the bento step writes bytecode for what serving imports). dpkg's status
  file stays, so image scanners still list the installed packages and their versions. To add Debian
  packages, extend another base (LANGDETECT_BASE_IMAGE);
- the uv tool image (`langdetect-uv:<version>`): just /uv, laid out like ghcr.io/astral-sh/uv. The
  bento Dockerfile bind-mounts it into the step that installs the venv, so uv is used but never
  shipped.

Users with a registry point LANGDETECT_BASE_IMAGE at any image with python3.11, bash and
groupadd (python:3.11-slim) and LANGDETECT_UV_IMAGE at ghcr.io/astral-sh/uv:<version>.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from images.engine import docker, image_exists, inspect_image, require_engine, tool_env
from langdetect_ops.errors import UserError

BASE_IMAGE_ENV = "LANGDETECT_BASE_IMAGE"
DEFAULT_BASE_IMAGE = "langdetect-base:bookworm-py3.11-runtime"
UV_IMAGE_ENV = "LANGDETECT_UV_IMAGE"
UV_VERSION = "0.13.9"  # BentoML needs uv >= 0.13.4
DEFAULT_UV_IMAGE = f"langdetect-uv:{UV_VERSION}"
SUITE = "bookworm"
MIRROR = os.environ.get("LANGDETECT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("LANGDETECT_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
HOST_CA_CERTIFICATES = Path("/usr/local/share/ca-certificates")
PACKAGES = ("python3.11", "passwd", "ca-certificates")

# Nothing at run time reads these; copyright files stay (licence notices).
UNNEEDED = ("usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "usr/share/lintian", "usr/share/bug",
            "usr/share/doc-base", "var/log/*",
            # the package manager: serving installs nothing (the status file stays, for scanners)
            "usr/bin/apt*", "usr/lib/apt", "usr/lib/x86_64-linux-gnu/libapt-*", "etc/apt", "var/lib/apt",
            "var/cache/apt", "usr/bin/dpkg*", "usr/share/dpkg", "etc/dpkg", "var/lib/dpkg/info",
            "var/lib/dpkg/*-old", "usr/bin/perl*", "usr/lib/x86_64-linux-gnu/perl-base", "usr/share/perl5",
            "usr/share/debconf", "var/cache/debconf", "usr/bin/debconf*",
            # glibc's iconv modules (Python's codecs are its own), the stdlib's docs and tests
            "usr/lib/x86_64-linux-gnu/gconv", "usr/lib/python3.11/pydoc_data", "usr/lib/python3.11/test",
            # stdlib bytecode: the bento step (images/warm_bytecode.py) writes it for what serving imports
            "usr/lib/python3.11/**/__pycache__")


@dataclass
class BaseImages:
    base: str
    uv: str
    base_bytes: int
    built: list[str]


def base_image() -> str:
    return os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE


def uv_image() -> str:
    return os.environ.get(UV_IMAGE_ENV) or DEFAULT_UV_IMAGE


def ensure_base_images(extra_ca_dir: Path | None = None, force: bool = False) -> BaseImages:
    """Builds whichever of the base and uv images is missing (or both, with force)."""
    require_engine()
    built = []
    if force or not image_exists(DEFAULT_BASE_IMAGE):
        build_base_image(DEFAULT_BASE_IMAGE, extra_ca_dir)
        built.append(DEFAULT_BASE_IMAGE)
    if force or not image_exists(DEFAULT_UV_IMAGE):
        build_uv_image(DEFAULT_UV_IMAGE, UV_VERSION)
        built.append(DEFAULT_UV_IMAGE)
    size = int(inspect_image(DEFAULT_BASE_IMAGE)["Size"])
    return BaseImages(DEFAULT_BASE_IMAGE, DEFAULT_UV_IMAGE, size, built)


def build_base_image(tag: str, extra_ca_dir: Path | None = None) -> None:
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            raise UserError(f"{tool} is missing; scripts/install-docker.sh installs what the base image needs")
    if os.geteuid() != 0:
        raise UserError("debootstrap needs root to build the base image")
    with tempfile.TemporaryDirectory(prefix="langdetect-base-") as tmp:
        root = Path(tmp) / "rootfs"
        bootstrap(root)
        apply_security_updates(root)
        if extra_ca_dir is not None:
            add_ca_certificates(root, extra_ca_dir)
        slim(root)
        import_rootfs(root, tag)


def bootstrap(root: Path) -> None:
    run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR])


def apply_security_updates(root: Path) -> None:
    """debootstrap installs the release as published; point-release and security fixes come after."""
    (root / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\n"
        f"deb {SECURITY_MIRROR} {SUITE}-security main\n")
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)  # never write through a symlink that points out of the chroot
    shutil.copyfile("/etc/resolv.conf", resolv)
    try:
        chroot(root, "apt-get", "update", "-qq")
        chroot(root, "apt-get", "upgrade", "-y", "-qq")
        chroot(root, "apt-get", "clean")
    finally:
        resolv.unlink(missing_ok=True)  # docker provides one at run time


def add_ca_certificates(root: Path, ca_dir: Path) -> None:
    """Trusts the host's extra CAs (a TLS-intercepting proxy, a corporate CA) inside builds too."""
    certificates = sorted(Path(ca_dir).glob("**/*.crt"))
    if not certificates:
        raise UserError(f"no *.crt files in {ca_dir}")
    target = root / "usr/local/share/ca-certificates"
    target.mkdir(parents=True, exist_ok=True)
    for cert in certificates:
        shutil.copy2(cert, target / cert.name)
    chroot(root, "update-ca-certificates")


def slim(root: Path) -> None:
    for relative in UNNEEDED:
        for path in list(root.glob(relative)):  # listed first: removing while globbing skips entries
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    docs = root / "usr/share/doc"
    for path in sorted(docs.rglob("*"), reverse=True):  # files first, then the emptied folders
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.name != "copyright":
            path.unlink()


def import_rootfs(root: Path, tag: str) -> None:
    """One flat layer: `tar -C root -c . | docker import`, with the image settings a base needs."""
    changes = ["ENV LANG=C.UTF-8", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               'CMD ["python3.11"]',
               f'LABEL org.opencontainers.image.description="Debian {SUITE} minbase with python3.11"',
               'LABEL org.opencontainers.image.source="langdetect images base"']
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "--exclude=./dev/*", "--exclude=./proc/*",
                            "--exclude=./sys/*", "-c", "."], stdout=subprocess.PIPE)
    args = [require_engine(), "import", *[a for c in changes for a in ("--change", c)], "-", tag]
    imported = subprocess.run(args, stdin=tar.stdout, capture_output=True, text=True, env=tool_env())
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise UserError(f"docker import of the base image failed: {imported.stderr[-1000:]}")


def build_uv_image(tag: str, version: str) -> None:
    """FROM-scratch image holding only /uv, taken from the uv wheel on PyPI."""
    with tempfile.TemporaryDirectory(prefix="langdetect-uv-") as tmp:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             f"uv=={version}", "-d", tmp])
        wheel = next(Path(tmp).glob("uv-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            binary = archive.read(f"uv-{version}.data/scripts/uv")
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w") as tar:
            info = tarfile.TarInfo("uv")
            info.size, info.mode = len(binary), 0o755
            tar.addfile(info, io.BytesIO(binary))
        tar_path = Path(tmp) / "uv.tar"
        tar_path.write_bytes(layer.getvalue())
        docker("import", "--change", 'CMD ["/uv"]', str(tar_path), tag)


def chroot(root: Path, *args: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    run(["chroot", str(root), *args], env=env)


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise UserError(f"{' '.join(cmd[:3])} failed (exit {result.returncode}):\n{result.stdout[-1500:]}"
                        f"{result.stderr[-1500:]}")

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
  shipped;
- the strip tool image (`langdetect-strip:latest`): the host's GNU strip with its own loader and
  libraries, and /strip to run it. The same step strips the symbol tables from the CPU image's shared
  objects (wheels ship them unstripped: aiohttp's HTTP parser is 3.3 MB, 0.6 MB stripped). Never
  shipped either. Point LANGDETECT_STRIP_IMAGE at the base image to skip stripping.

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

from langdetect_ops.containers import docker, image_exists, inspect_image, require_engine, tool_env
from langdetect_ops.errors import UserError

BASE_IMAGE_ENV = "LANGDETECT_BASE_IMAGE"
DEFAULT_BASE_IMAGE = "langdetect-base:bookworm-py3.11-runtime"
UV_IMAGE_ENV = "LANGDETECT_UV_IMAGE"
UV_VERSION = "0.13.9"  # BentoML needs uv >= 0.13.4
DEFAULT_UV_IMAGE = f"langdetect-uv:{UV_VERSION}"
STRIP_IMAGE_ENV = "LANGDETECT_STRIP_IMAGE"
DEFAULT_STRIP_IMAGE = "langdetect-strip:latest"
# /strip in that image: GNU strip through the loader it was linked with, whatever the image mounting it
STRIP_SCRIPT = """#!/bin/sh
here=$(dirname "$0")
exec "$here/lib/{loader}" --library-path "$here/lib" "$here/bin/strip" "$@"
"""
SUITE = "bookworm"
MIRROR = os.environ.get("LANGDETECT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("LANGDETECT_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
HOST_CA_CERTIFICATES = Path("/usr/local/share/ca-certificates")
PACKAGES = ("python3.11", "passwd", "ca-certificates")

# Nothing at run time reads these; copyright files stay (licence notices).
UNNEEDED = (
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/doc-base",
    "var/log/*",
    # the package manager: serving installs nothing (the status file stays, for scanners)
    "usr/bin/apt*",
    "usr/lib/apt",
    "usr/lib/x86_64-linux-gnu/libapt-*",
    "etc/apt",
    "var/lib/apt",
    "var/cache/apt",
    "usr/bin/dpkg*",
    "usr/share/dpkg",
    "etc/dpkg",
    "var/lib/dpkg/info",
    "var/lib/dpkg/*-old",
    "usr/bin/perl*",
    "usr/lib/x86_64-linux-gnu/perl-base",
    "usr/share/perl5",
    "usr/share/debconf",
    "var/cache/debconf",
    "usr/bin/debconf*",
    # glibc's iconv modules (Python's codecs are its own), the stdlib's docs and tests
    "usr/lib/x86_64-linux-gnu/gconv",
    "usr/lib/python3.11/pydoc_data",
    "usr/lib/python3.11/test",
    # stdlib bytecode: the bento step (images/warm_bytecode.py) writes it for what serving imports
    "usr/lib/python3.11/**/__pycache__",
)


# Programs no image step or serving process runs (disk, mount, terminal and package tools), by package;
# their files are read from dpkg's lists before slim() drops those lists. Shells, coreutils, findutils,
# grep, sed, passwd (groupadd/useradd for BentoML's Dockerfile) and libc-bin (ldd, ldconfig) stay.
UNUSED_PACKAGES = (
    "util-linux",
    "util-linux-extra",
    "e2fsprogs",
    "mount",
    "tar",
    "diffutils",
    "gpgv",
    "openssl",
    "bsdutils",
    "sysvinit-utils",
    "ncurses-bin",
    "hostname",
    "logsave",
    "login",
    "libpam-modules",
    "libpam-modules-bin",
    "libpam-runtime",
    "bash-completion",
    "debianutils-extra",
    "init-system-helpers",
    "adduser",
    "gzip",
)
# Standard-library parts serving never imports: GUIs, IDEs, 2to3, test and demo extension modules, and
# the C modules that only they need (their libraries then fall out of the link closure below).
UNUSED_STDLIB = (
    "usr/lib/python3.11/idlelib",
    "usr/lib/python3.11/tkinter",
    "usr/lib/python3.11/turtledemo",
    "usr/lib/python3.11/lib2to3",
    "usr/lib/python3.11/ensurepip",
    "usr/lib/python3.11/curses",
    "usr/lib/python3.11/dbm",
    "usr/lib/python3.11/distutils",
    "usr/lib/python3.11/turtle.py",
    "usr/lib/python3.11/lib-dynload/_test*",
    "usr/lib/python3.11/lib-dynload/_ctypes_test*",
    "usr/lib/python3.11/lib-dynload/xxlimited*",
    "usr/lib/python3.11/lib-dynload/_xx*",
    "usr/lib/python3.11/lib-dynload/_curses*",
    "usr/lib/python3.11/lib-dynload/_dbm*",
    "usr/lib/python3.11/lib-dynload/_gdbm*",
    "usr/lib/python3.11/lib-dynload/nis.*",
    "usr/lib/python3.11/lib-dynload/readline.*",
    "usr/lib/python3.11/lib-dynload/ossaudiodev*",
    "usr/share/bash-completion",
    "usr/share/keyrings",
    "usr/share/gcc",
    "usr/share/gdb",
    "usr/lib/x86_64-linux-gnu/security",
    "usr/lib/x86_64-linux-gnu/krb5",
    "usr/lib/x86_64-linux-gnu/e2fsprogs",
    "usr/lib/x86_64-linux-gnu/engines-3",
    "etc/pam.d",
)
LIB_DIR = "usr/lib/x86_64-linux-gnu"
# What manylinux wheels (onnxruntime, numpy, tokenizers, pydantic-core...) may link without bundling, plus
# what glibc loads by name at run time, and the program interpreter (PT_INTERP, not a DT_NEEDED entry).
WHEEL_RUNTIME = (
    "libc.so.6",
    "libm.so.6",
    "libmvec.so.1",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libresolv.so.2",
    "libcrypt.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
    "libnss_files.so.2",
    "libnss_dns.so.2",
    "libanl.so.1",
    "ld-linux-x86-64.so.2",
)


@dataclass
class BaseImages:
    base: str
    uv: str
    strip: str
    base_bytes: int
    built: list[str]


def base_image() -> str:
    return os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE


def uv_image() -> str:
    return os.environ.get(UV_IMAGE_ENV) or DEFAULT_UV_IMAGE


def strip_image() -> str:
    return os.environ.get(STRIP_IMAGE_ENV) or DEFAULT_STRIP_IMAGE


def ensure_base_images(extra_ca_dir: Path | None = None, force: bool = False) -> BaseImages:
    """Builds whichever of the base, uv and strip images is missing (or all, with force)."""
    require_engine()
    built = []
    if force or not image_exists(DEFAULT_BASE_IMAGE):
        build_base_image(DEFAULT_BASE_IMAGE, extra_ca_dir)
        built.append(DEFAULT_BASE_IMAGE)
    if force or not image_exists(DEFAULT_UV_IMAGE):
        build_uv_image(DEFAULT_UV_IMAGE, UV_VERSION)
        built.append(DEFAULT_UV_IMAGE)
    if force or not image_exists(DEFAULT_STRIP_IMAGE):
        build_strip_image(DEFAULT_STRIP_IMAGE)
        built.append(DEFAULT_STRIP_IMAGE)
    size = int(inspect_image(DEFAULT_BASE_IMAGE)["Size"])
    return BaseImages(DEFAULT_BASE_IMAGE, DEFAULT_UV_IMAGE, DEFAULT_STRIP_IMAGE, size, built)


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
        remove_packages_files(root, UNUSED_PACKAGES)
        slim(root)
        remove(root, UNUSED_STDLIB)
        keep_linked_libraries_only(root)
        import_rootfs(root, tag)


def bootstrap(root: Path) -> None:
    run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR])


def apply_security_updates(root: Path) -> None:
    """debootstrap installs the release as published; point-release and security fixes come after."""
    (root / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-updates main\ndeb {SECURITY_MIRROR} {SUITE}-security main\n"
    )
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


def remove(root: Path, patterns) -> None:
    for relative in patterns:
        for path in list(root.glob(relative)):  # listed first: removing while globbing skips entries
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()


def remove_packages_files(root: Path, packages) -> None:
    """The files (not directories) that dpkg lists for `packages`, except shared libraries: whether a
    library stays is decided by what still links it (keep_linked_libraries_only)."""
    for package in packages:
        listing = root / "var/lib/dpkg/info" / f"{package}.list"
        if not listing.exists():
            listing = next(iter((root / "var/lib/dpkg/info").glob(f"{package}:*.list")), listing)
        if not listing.exists():
            continue
        for line in listing.read_text().splitlines():
            path = root / line.lstrip("/")
            if ".so" in path.name or path.is_dir():  # is_dir follows links: /bin, /lib, /sbin point into /usr
                continue
            if path.is_symlink() or path.exists():
                path.unlink()


def elf_needed(path: Path) -> list[str]:
    """DT_NEEDED entries of an ELF file (host binutils' readelf); [] for anything else."""
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"\x7fELF":
                return []
    except OSError:
        return []
    out = subprocess.run(["readelf", "-d", "--wide", str(path)], capture_output=True, text=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def keep_linked_libraries_only(root: Path) -> None:
    """Removes every shared library in /usr/lib/x86_64-linux-gnu that no remaining program, Python
    extension module or kept library links (transitively), except WHEEL_RUNTIME. Needs `readelf`."""
    if shutil.which("readelf") is None:
        raise UserError("readelf is missing (apt-get install binutils): the base image build needs it")
    libdir = root / LIB_DIR
    libraries = {p.name: p for p in libdir.iterdir() if ".so" in p.name and (p.is_file() or p.is_symlink())}
    roots = [
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p.parent != libdir and not str(p).startswith(str(root / "proc"))
    ]
    wanted, queue = set(), [*WHEEL_RUNTIME, *(n for p in roots for n in elf_needed(p))]
    while queue:
        name = queue.pop()
        if name in wanted or name not in libraries:
            continue
        wanted.add(name)
        queue.extend(elf_needed(libraries[name].resolve()))
    keep = wanted | {libraries[n].resolve().name for n in wanted}
    for name, path in libraries.items():
        if name not in keep:
            path.unlink()


def slim(root: Path) -> None:
    remove(root, UNNEEDED)
    docs = root / "usr/share/doc"
    for path in sorted(docs.rglob("*"), reverse=True):  # files first, then the emptied folders
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.name != "copyright":
            path.unlink()


def import_rootfs(root: Path, tag: str) -> None:
    """One flat layer: `tar -C root -c . | docker import`, with the image settings a base needs."""
    changes = [
        "ENV LANG=C.UTF-8",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["python3.11"]',
        f'LABEL org.opencontainers.image.description="Debian {SUITE} minbase with python3.11"',
        'LABEL org.opencontainers.image.source="langdetect images base"',
    ]
    tar = subprocess.Popen(
        [
            "tar",
            "--numeric-owner",
            "-C",
            str(root),
            "--exclude=./dev/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "-c",
            ".",
        ],
        stdout=subprocess.PIPE,
    )
    args = [require_engine(), "import", *[a for c in changes for a in ("--change", c)], "-", tag]
    imported = subprocess.run(args, stdin=tar.stdout, capture_output=True, text=True, env=tool_env())
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise UserError(f"docker import of the base image failed: {imported.stderr[-1000:]}")


def build_uv_image(tag: str, version: str) -> None:
    """FROM-scratch image holding only /uv, taken from the uv wheel on PyPI."""
    with tempfile.TemporaryDirectory(prefix="langdetect-uv-") as tmp:
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                f"uv=={version}",
                "-d",
                tmp,
            ]
        )
        wheel = next(Path(tmp).glob("uv-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            binary = archive.read(f"uv-{version}.data/scripts/uv")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        add_executable(tar, "uv", binary)
    import_layer(layer, tag, 'CMD ["/uv"]')


def build_strip_image(tag: str) -> None:
    """FROM-scratch image with the host's GNU strip (Debian's binutils), the libraries and loader it
    links (from `ldd`), and /strip, which runs it with them: it works in any image that mounts it."""
    strip = shutil.which("strip")
    if strip is None or shutil.which("ldd") is None:
        raise UserError("strip is missing (apt-get install binutils): the strip tool image needs it")
    binary = Path(strip).resolve()
    libraries, loader = linked_libraries(binary)
    version = subprocess.run([strip, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add(binary, "bin/strip")
        for name, path in {**libraries, loader.name: loader}.items():
            tar.add(path.resolve(), f"lib/{name}")  # each under the name the binary asks for
        add_executable(tar, "strip", STRIP_SCRIPT.format(loader=loader.name).encode())
    import_layer(layer, tag, f'LABEL org.opencontainers.image.description="{version}"')


def add_executable(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """An executable file made from bytes in memory (a binary taken from a wheel, a script)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o755
    tar.addfile(info, io.BytesIO(data))


def import_layer(layer: io.BytesIO, tag: str, change: str) -> None:
    """`docker import` of one in-memory tar layer: a FROM-scratch tool image."""
    with tempfile.TemporaryDirectory(prefix="langdetect-layer-") as tmp:
        tar_path = Path(tmp) / "layer.tar"
        tar_path.write_bytes(layer.getvalue())
        docker("import", "--change", change, str(tar_path), tag)


def linked_libraries(binary: Path) -> tuple[dict[str, Path], Path]:
    """The shared libraries `binary` loads (soname -> host path, transitively) and its loader, from ldd."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libraries, loader = {}, None
    for line in out.splitlines():
        fields = line.split()
        if "=>" in fields and fields[2].startswith("/"):
            libraries[fields[0]] = Path(fields[2])
        elif fields and fields[0].startswith("/") and "ld-linux" in fields[0]:
            loader = Path(fields[0])
    if loader is None:
        raise UserError(f"ldd {binary}: no loader found in {out!r}")
    return libraries, loader


def chroot(root: Path, *args: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    run(["chroot", str(root), *args], env=env)


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise UserError(
            f"{' '.join(cmd[:3])} failed (exit {result.returncode}):\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )

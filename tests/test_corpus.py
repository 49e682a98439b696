"""Corpus builder: text rules on strings, extraction on a fake unpacked tree, and an end-to-end build
from .deb files made here (no network: the cache already holds every package)."""

from __future__ import annotations

import array
import csv
import gzip
import hashlib
import itertools
import json
import random
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import polib
import pytest

from langdetect_ops.config import LANGUAGES, SPLITS
from langdetect_ops.errors import UserError
from training import corpus
from training import textfilter as tf

FIXTURES = Path(__file__).parent / "fixtures"
MESSAGES = json.loads((FIXTURES / "corpus_messages.json").read_text(encoding="utf-8"))["messages"]
# Locale directory per label, with regional variants where packages use them.
LOCALE_DIRS = {lang: lang for lang in LANGUAGES if lang != "en"} | {"pt": "pt_BR", "zh": "zh_CN", "sw": "sw_KE"}


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """Compile a GNU .mo catalog, as msgfmt does: header, two sorted offset tables, the strings."""
    catalog = {"": "Content-Type: text/plain; charset=UTF-8\n", **messages}
    keys = sorted(k.encode() for k in catalog)
    values = [catalog[k.decode()].encode() for k in keys]
    ids = strs = b""
    table = []
    for key, value in zip(keys, values):
        table.append((len(ids), len(key), len(strs), len(value)))
        ids += key + b"\0"
        strs += value + b"\0"
    key_start = 7 * 4 + 16 * len(keys)
    value_start = key_start + len(ids)
    offsets = [n for o1, l1, _, _ in table for n in (l1, o1 + key_start)]
    offsets += [n for _, _, o2, l2 in table for n in (l2, o2 + value_start)]
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.array("i", offsets).tobytes() + ids + strs)


# --------------------------------------------------------------------------------------------
# textfilter


@pytest.mark.parametrize(
    "code, label",
    [
        ("pt_BR", "pt"),
        ("pt", "pt"),
        ("zh_CN", "zh"),
        ("zh-TW", "zh"),
        ("sw_KE", "sw"),
        ("sw", "sw"),
        ("C", "en"),
        ("en-US", "en"),
        ("en", "en"),
        ("en_GB", None),
        ("en@shaw", None),
        ("sr@latin", None),
        ("ko", None),
        ("ur_PK", "ur"),
        ("de.UTF-8", "de"),
    ],
)
def test_normalize_locale(code, label):
    assert tf.normalize_locale(code) == label


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("_Open the file", "Open the file"),
        ("&Open %s in <b>{name}</b> &amp; close", "Open in & close"),
        ("ファイルを開く(_O)", "ファイルを開く"),
        ("~Open %PRODUCTNAME file $(ARG1) %1", "Open file"),
        ("Copied %(count)d of %2$s files", "Copied of files"),
        ("Nie można otworzyć pliku „%s”.", "Nie można otworzyć pliku."),
        ("днес в %H ч.", "днес в ч."),
        ("  many\n\tspaces  ", "many spaces"),
        ("50 % de la mémoire", "50 % de la mémoire"),
    ],
)
def test_clean_message(raw, clean):
    assert tf.clean_message(raw) == clean


def test_clean_message_is_nfc():
    assert tf.clean_message("Cafe\u0301 ouvert toute la journe\u0301e") == "Café ouvert toute la journée"


def test_split_sentences_keeps_short_paragraphs_and_splits_long_ones():
    short = "One sentence. Another one."
    assert tf.split_sentences(short) == [short]
    long = " ".join(f"Sentence number {i} is here, e.g. for testing the splitter." for i in range(10))
    parts = tf.split_sentences(long)
    assert len(parts) == 10 and all(p.startswith("Sentence number") for p in parts)  # "e.g. for" glued
    assert tf.split_sentences("这是第一句话。" * 30)[:2] == ["这是第一句话。", "这是第一句话。"]


def test_text_width_counts_cjk_double_and_marks_zero():
    assert tf.text_width("abc") == 3
    assert tf.text_width("中文") == 4
    assert tf.text_width("ที่") == 1


@pytest.mark.parametrize(
    "text, lang, problem",
    [
        ("ファイルを保存できませんでした", "ja", None),
        ("文件保存失败了请重试一下", "ja", "ja-without-kana"),
        ("文件保存失败了请重试一下", "zh", None),
        ("ファイルを保存できませんでした", "zh", "zh-with-kana-or-hangul"),
        ("تعذّر حفظ الملف في المجلد المحدد", "ar", None),
        ("فائل کو محفوظ نہیں کیا جا سکا", "ar", "ar-with-urdu-letters"),
        ("فائل کو محفوظ نہیں کیا جا سکا", "ur", None),
        ("تعذر حفظ الملف في المجلد المحدد", "ur", "ur-without-urdu-letters"),
        ("Файлът не можа да бъде запазен", "bg", None),
        ("Не удалось открыть этот файл", "bg", "bg-with-russian-letters"),
        ("Не удалось открыть этот файл", "ru", None),
        ("Δεν ήταν δυνατή η αποθήκευση", "el", None),
        ("Die Datei wurde gespeichert", "el", "script"),
        ("फ़ाइल सहेजी नहीं जा सकी", "hi", None),
        ("ไม่สามารถบันทึกแฟ้มได้", "th", None),
        ("Die Datei wurde gespeichert", "de", None),
        ("Файлът не можа да бъде запазен", "de", "script"),
        ("Không thể lưu tệp vào thư mục", "vi", None),
        ("Could not save the file here", "vi", "vi-without-diacritics"),
    ],
)
def test_script_problem(text, lang, problem):
    assert tf.script_problem(text, lang) == problem


def test_looks_english_is_language_aware():
    assert tf.looks_english("Could not open the file you selected", "de")
    assert tf.looks_english("To Add Fish to a Panel", "sw")
    assert not tf.looks_english("Die Datei konnte nicht im Ordner gespeichert werden", "de")
    assert not tf.looks_english("Dit is een test of het werkt", "nl")  # is/of are Dutch
    assert not tf.looks_english("To jest plik, który nie istnieje", "pl")  # to is Polish
    assert not tf.looks_english("Una nueva versión está disponible", "es")


@pytest.mark.parametrize(
    "text",
    [
        "See https://example.org for more details",
        "Edit /etc/fstab before rebooting the machine",
        "Use --verbose to print more details",
        "The value of getCurrentValue is wrong",
        "Key org.gnome.desktop.interface is missing",
        "Save the document as report.txt please",
        "x = a + b * (c - d) / 2 == 3; y",
        "12345 67890 12345 67890 !!!",
        "ekran;blokada;zablokuj;prywatne;",
        'Download "%" gebruikt % MB vrije ruimte',
        "Copyright © 2002 Red Hat, Inc.",
        "snake_case_identifier is used here",
    ],
)
def test_is_code_like(text):
    assert tf.is_code_like(text)


@pytest.mark.parametrize(
    "text",
    [
        "Die Datei konnte nicht gespeichert werden.",
        "Choose a colour (red, green or blue) for the text.",
        "z. B. eine Datei öffnen, bearbeiten und speichern",
        "Es sind 50 % oder %50 der Daten geladen worden",
        "ไม่สามารถบันทึกแฟ้มลงในโฟลเดอร์ที่เลือกได้",
    ],
)
def test_is_not_code_like(text):
    assert not tf.is_code_like(text)


def test_rejection_reason():
    assert tf.rejection_reason("Too short", "en") == "too-short"
    assert tf.rejection_reason("word " * 80, "en") == "too-long"
    assert tf.rejection_reason("Please check the connection and try again", "de") == "english"
    assert tf.rejection_reason("Bitte überprüfen Sie die Verbindung", "de") is None
    assert tf.rejection_reason("无法将文件保存到所选文件夹。", "zh") is None  # 13 characters, width 26
    assert tf.rejection_reason("Porta sorgente virtuale", "it") == "too-few-words"
    assert tf.rejection_reason("Porta sorgente virtuale attiva", "it") is None
    assert tf.rejection_reason("ไม่สามารถบันทึกแฟ้มได้ในขณะนี้", "th") is None  # no spaces: width decides


def test_dedup_key_ignores_case_and_punctuation():
    assert tf.dedup_key("Open File…") == tf.dedup_key("open file") == tf.dedup_key("Open file:")
    assert tf.dedup_key("Open file") != tf.dedup_key("Open files")
    assert tf.dedup_key("Quick bar slot 7") == tf.dedup_key("Quick bar slot 20")


def test_html_paragraphs_keep_default_variant_and_skip_chrome():
    page = """<html><head><title>T</title></head><body>
    <header><p>Help for LibreOffice</p></header>
    <p class="paragraph">Choose <span class="switchinline"><span hidden="true" id="MAC1">Preferences</span>
    <span hidden="true" id="default1">Tools - Options</span></span> to open it.</p>
    <pre>code block here</pre><img src="x.png" hidden="true">
    <ul><li>First item text</li><li>Second item</li></ul>
    <footer><p>This page is: /text/a.xhp</p></footer></body></html>"""
    assert tf.html_paragraphs(page) == ["Choose Tools - Options to open it.", "First item text", "Second item"]


def test_mallard_paragraphs_skip_info_and_block_code():
    page = """<page xmlns="http://projectmallard.org/1.0/"><info><desc>Credits</desc>
    <credit><name>Someone</name></credit></info><title>Search for files</title>
    <p>Type <code>report</code> in the search box.</p><code>sudo rm -rf</code>
    <steps><item><p>Press the key.</p></item></steps>
    <p>Choose <guiseq><gui>Edit</gui><gui>Preferences</gui></guiseq>.</p></page>"""
    assert tf.mallard_paragraphs(page) == [
        "Search for files",
        "Type report in the search box.",
        "Press the key.",
        "Choose Edit Preferences.",
    ]


def test_groff_paragraphs():
    page = r""".\" comment line
.TH LS 1 "2022" "coreutils"
.SH BESCHREIBUNG
Auflistung von \fBInformationen\fP \- über die
DATEIen (Standard ist \(lqhier\(rq).
.TP
\fB\-a\fP, \fB\-\-all\fP
Einträge nicht ignorieren
.nf
ls -la /tmp
.fi
.ig
ignored text
..
.B Fett
und normal\[u00E9]
.SH ÜBERSETZUNG
Die deutsche Übersetzung wurde von Jemand Anderem erstellt.
"""
    assert tf.groff_paragraphs(page) == [
        "Auflistung von Informationen - über die DATEIen (Standard ist “hier”).",
        "Einträge nicht ignorieren",
        "Fett und normalé",
    ]


def test_fortune_paragraphs():
    text = "A wise saying\nspread over two lines.\n\t-- Somebody\n%\n要有礼貌\n\n在这种规模的项目中，\n很难避免。\n%\n"
    assert tf.fortune_paragraphs(text) == [
        "A wise saying spread over two lines.",
        "要有礼貌",
        "在这种规模的项目中，很难避免。",
    ]


# --------------------------------------------------------------------------------------------
# corpus: extraction, grouping, splitting


def _fake_tree(root: Path) -> None:
    write_mo(
        root / "usr/share/locale/de/LC_MESSAGES/app.mo",
        {
            "Could not open the selected file": "Die ausgewählte Datei konnte nicht geöffnet werden",
            "This string was left untranslated": "This string was left untranslated",
            "Show the _hidden files in this folder": "Versteckte Dateien in diesem _Ordner anzeigen",
            "menu\x04Quit the whole application now": "Die gesamte Anwendung jetzt beenden",
        },
    )
    write_mo(
        root / "usr/share/locale/en_GB/LC_MESSAGES/app.mo",
        {"Choose a color for the selected text": "Choose a colour for the selected text"},
    )
    write_mo(
        root / "usr/share/locale/ur/LC_MESSAGES/app.mo",
        {"The file could not be saved": "فائل کو محفوظ نہیں کیا جا سکا"},
    )
    write_mo(
        root / "usr/share/locale/fr/LC_MESSAGES/gnome-control-center-2.0-timezones.mo",
        {
            "Central Time - Rainy River and Fort Frances, Ontario": "Heure du Centre - Rainy River et Fort Frances, Ontario"
        },
    )
    man = root / "usr/share/man/de/man1/tool.1.gz"
    man.parent.mkdir(parents=True)
    man.write_bytes(gzip.compress(b".TH TOOL 1\n.SH BESCHREIBUNG\nDieses Werkzeug zeigt Dateien an.\n"))
    fortune = root / "usr/share/games/fortunes/de/sprueche"
    fortune.parent.mkdir(parents=True)
    fortune.write_text("Wer zuletzt lacht, lacht am besten.\n%\nMorgenstund hat Gold im Mund.\n", encoding="utf-8")
    (root / "usr/share/games/fortunes/de/sprueche.dat").write_bytes(b"\0\1\2")


def test_extract_tree(tmp_path):
    _fake_tree(tmp_path)
    result = corpus.extract_tree(tmp_path, "fake-pkg", corpus.PackageTexts("fake-pkg", "1", "x.deb", 0))
    assert sorted(result.texts["de"]) == sorted(
        [
            "Dieses Werkzeug zeigt Dateien an.",
            "Wer zuletzt lacht, lacht am besten.",
            "Morgenstund hat Gold im Mund.",
            "Die ausgewählte Datei konnte nicht geöffnet werden",
            "Versteckte Dateien in diesem Ordner anzeigen",
            "Die gesamte Anwendung jetzt beenden",
        ]
    )
    assert result.texts["ur"] == ["فائل کو محفوظ نہیں کیا جا سکا"]
    # English comes from the msgids of every catalog (context stripped), never from en_GB msgstrs.
    assert "Choose a color for the selected text" in result.texts["en"]
    assert "Choose a colour for the selected text" not in result.texts["en"]
    assert "Quit the whole application now" in result.texts["en"]
    assert "This string was left untranslated" not in result.texts["de"]
    # Time-zone catalogs are place names: neither their msgstrs nor their msgids are used.
    assert "fr" not in result.texts
    assert not any("Rainy River" in text for text in result.texts["en"])


def _po_catalog(entries: list[polib.POEntry]) -> polib.POFile:
    catalog = polib.POFile()
    catalog.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
    catalog.extend(entries)
    return catalog


def test_catalog_texts_keep_every_plural_form_and_every_context(tmp_path):
    path = tmp_path / "de.mo"
    _po_catalog(
        [
            polib.POEntry(
                msgid="One file was removed from the folder",
                msgid_plural="Several files were removed from the folder",
                msgstr_plural={
                    0: "Eine Datei wurde aus dem Ordner entfernt",
                    1: "Dateien wurden aus dem Ordner entfernt",
                },
            ),
            polib.POEntry(msgctxt="menu", msgid="Open the recent documents", msgstr="Die letzten Dokumente öffnen"),
            polib.POEntry(
                msgctxt="tooltip", msgid="Open the recent documents", msgstr="Zuletzt benutzte Dokumente öffnen"
            ),
            polib.POEntry(msgid="Close the window now", msgstr="Close the window now"),  # left untranslated
        ]
    ).save_as_mofile(str(path))
    english: set[str] = set()
    texts = corpus._catalog_texts(path, "de", english)
    assert sorted(texts) == sorted(
        [
            "Eine Datei wurde aus dem Ordner entfernt",
            "Dateien wurden aus dem Ordner entfernt",
            "Die letzten Dokumente öffnen",
            "Zuletzt benutzte Dokumente öffnen",
        ]
    )
    # English takes the singular msgids without their context; the plural msgid is not a source string.
    assert english == {"One file was removed from the folder", "Open the recent documents", "Close the window now"}


def test_catalog_texts_skip_fuzzy_and_empty_translations(tmp_path):
    path = tmp_path / "de.mo"
    _po_catalog(
        [
            polib.POEntry(msgid="Check the spelling", msgstr="Rechtschreibung prüfen", flags=["fuzzy"]),
            polib.POEntry(msgid="Print the whole page", msgstr=""),
            polib.POEntry(msgid="Save the document", msgstr="Das Dokument speichern"),
        ]
    ).save_as_mofile(str(path))  # as msgfmt does, fuzzy and empty entries stay out of the .mo
    english: set[str] = set()
    assert corpus._catalog_texts(path, "de", english) == ["Das Dokument speichern"]
    assert english == {"Save the document"}
    # A writer that keeps an empty msgstr: it gives no text, while its msgid is still English.
    write_mo(tmp_path / "tree/usr/share/locale/de/LC_MESSAGES/app.mo", {"Print the whole page now": ""})
    result = corpus.extract_tree(tmp_path / "tree", "pkg", corpus.PackageTexts("pkg", "1", "x.deb", 0))
    assert "de" not in result.texts and not result.rejected
    assert result.texts["en"] == ["Print the whole page now"]


@pytest.mark.parametrize("damage", [lambda data: data[:40], lambda data: b"not a catalog" + data[13:]])
def test_unreadable_catalog_is_skipped(tmp_path, damage):
    path = tmp_path / "de.mo"
    write_mo(path, {"Save the document": "Das Dokument speichern"})
    path.write_bytes(damage(path.read_bytes()))
    english: set[str] = set()
    assert corpus._catalog_texts(path, "de", english) == [] and english == set()


@pytest.mark.parametrize(
    "package, group",
    [
        ("libreoffice-help-pt-br", "libreoffice-help"),
        ("libreoffice-help-zh-cn", "libreoffice-help"),
        ("libreoffice-l10n-ar", "libreoffice-l10n"),
        ("manpages-de", "manpages"),
        ("manpages", "manpages"),
        ("fortunes-min", "fortunes-min"),
        ("vlc-l10n", "vlc-l10n"),
        ("gdm3", "gdm3"),
    ],
)
def test_source_group(package, group):
    assert corpus.source_group(package) == group


def _result(package: str, texts: dict[str, list[str]]) -> corpus.PackageTexts:
    return corpus.PackageTexts(package, "1", f"{package}.deb", 0, texts)


def test_deduplicate_drops_repeats_and_texts_with_two_labels():
    pool, dropped = corpus.deduplicate(
        [
            _result(
                "a",
                {
                    "de": ["Ein Satz auf Deutsch hier.", "Gleicher Text in zwei Sprachen"],
                    "nl": ["Gleicher Text in zwei Sprachen"],
                },
            ),
            _result("b", {"de": ["ein Satz auf Deutsch hier", "Noch ein deutscher Satz hier"]}),
        ]
    )
    assert pool["de"] == {"a": ["Ein Satz auf Deutsch hier."], "b": ["Noch ein deutscher Satz hier"]}
    assert "nl" not in pool
    assert dropped[("de", "duplicate")] == 1 and dropped[("de", "several-labels")] == 1


@pytest.mark.parametrize("seed", range(5))
def test_every_language_gets_every_split(seed):
    rng = random.Random(seed)
    pool = {lang: {} for lang in LANGUAGES}
    for i in range(rng.randint(8, 30)):
        for lang in rng.sample(LANGUAGES, rng.randint(1, len(LANGUAGES))):
            pool[lang][f"g{i}"] = [f"{lang} {i} {j}" for j in range(rng.randint(1, 300))]
    pool = {lang: groups or {"only": [f"{lang} only {j}" for j in range(50)]} for lang, groups in pool.items()}
    final, sources, _ = corpus.split_and_cap(pool, cap=10_000, seed=seed)
    for lang in LANGUAGES:
        assert all(final[lang][s] for s in ("train", "valid", "test")), lang
        assert sum(map(len, final[lang].values())) == sum(map(len, pool[lang].values()))  # nothing lost
        largest = max(pool[lang], key=lambda g: (len(pool[lang][g]), g))
        assert sources[lang][largest]["split"] in ("train", "hashed")
    assert corpus.split_and_cap(pool, cap=10_000, seed=seed)[0] == final  # deterministic


def test_assign_groups_aims_at_ten_percent():
    sizes = {f"g{i:02d}": {"de": 100, "fr": 100} for i in range(50)}
    assignment = corpus.assign_groups(sizes, random.Random(0))
    per_split = {s: sum(sizes[g]["fr"] for g, a in assignment.items() if a == s) for s in ("valid", "test")}
    assert per_split == {"valid": 500, "test": 500}


def test_a_source_lands_in_one_split_for_every_language():
    """A program's strings in train for one language and in test for another teach its domain words
    as one language's and then test them under the other (VLC's es vs pt)."""
    pool = {
        lang: {f"pkg{i:02d}": [f"{lang} text {i} {j}" for j in range(20 + 7 * i)] for i in range(30)}
        for lang in LANGUAGES
    }
    final, sources, fallbacks = corpus.split_and_cap(pool, cap=10_000, seed=0)
    assert fallbacks == {}
    for group in pool["de"]:
        assert len({sources[lang][group]["split"] for lang in LANGUAGES}) == 1, group
    assert all(final[lang]["test"] and final[lang]["valid"] for lang in LANGUAGES)


def test_scarce_language_tops_up_its_held_out_splits_alone():
    groups = {
        f"g{i}": [f"Sentensi ya {i} nambari {j}" for j in range(n)] for i, n in enumerate([300, 10, 12, 15, 40, 50])
    }
    splits, note = corpus.split_language(groups, dict.fromkeys(groups, "train"), seed=0)
    assert note["reason"] == "held-out split under half its share"
    moved = note["moved_for_this_language_only"]
    assert moved == {"valid": ["g1", "g2"], "test": ["g3"]}  # the smallest first; never the largest
    assert {g for g, _ in splits["valid"]} == {"g1", "g2"} and {g for g, _ in splits["test"]} == {"g3"}
    assert sum(len(v) for v in splits.values()) == 427  # nothing lost


def test_split_language_falls_back_to_text_hash_with_few_groups():
    groups = {"big": [f"Satz Nummer {i} auf Deutsch" for i in range(400)], "small": ["Ein kleiner Satz hier"]}
    splits, note = corpus.split_language(groups, {}, seed=0)
    assert note["hash_split_group"] == "big"
    assert all(len(splits[s]) > 20 for s in ("valid", "test"))
    assert ("small", "Ein kleiner Satz hier") in splits["train"]
    again, _ = corpus.split_language(groups, {}, seed=0)
    assert again == splits


def test_cap_language_respects_cap_and_shares():
    splits = {s: [("g", f"{s} text {i}") for i in range(n)] for s, n in (("train", 500), ("valid", 80), ("test", 10))}
    capped = corpus.cap_language(splits, cap=100, seed=0, lang="de")
    assert {s: len(v) for s, v in capped.items()} == {"train": 80, "valid": 10, "test": 10}
    assert capped == corpus.cap_language(splits, cap=100, seed=0, lang="de")
    bigger_train = corpus.cap_language(splits, cap=100, seed=0, lang="de", train_cap=150)
    assert {s: len(v) for s, v in bigger_train.items()} == {"train": 150, "valid": 10, "test": 10}
    assert bigger_train["test"] == capped["test"]  # the held-out splits do not move


# --------------------------------------------------------------------------------------------
# end to end, from .deb files


def _build_deb(workdir: Path, package: str, files: dict[str, dict[str, str]], cache: Path) -> None:
    root = workdir / package
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        f"Description: test catalogs\n",
        encoding="utf-8",
    )
    for locale, catalog in files.items():
        write_mo(root / f"usr/share/locale/{locale}/LC_MESSAGES/{package}.mo", catalog)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(cache / f"{package}_1.0-1_all.deb")],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def deb_cache(tmp_path_factory):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    work = tmp_path_factory.mktemp("debs")
    cache = work / "cache"
    cache.mkdir()
    for i, message in enumerate(MESSAGES):
        catalogs = {LOCALE_DIRS[lang]: {message["en"]: text} for lang, text in message.items() if lang != "en"}
        catalogs["en_GB"] = {message["en"]: message["en"] + " (British)"}
        _build_deb(work, f"fake-ui-{i}", catalogs, cache)
    _build_deb(work, "fake-de-only", {"de": {MESSAGES[0]["en"]: MESSAGES[0]["de"]}}, cache)
    return cache


PACKAGES = [f"fake-ui-{i}" for i in range(len(MESSAGES))]


def test_build_corpus_end_to_end(deb_cache, tmp_path, monkeypatch, caplog):
    # A package missing from the cache is fetched; make that fail, as apt-get would for an unknown name.
    monkeypatch.setattr(corpus, "_apt_download", lambda pkgs, cache: "E: Unable to locate package")
    monkeypatch.setattr(corpus, "_require_tool", lambda name, why: None)
    out = tmp_path / "corpus"
    manifest = corpus.build_corpus(
        out, deb_cache, cap_per_language=100, seed=3, packages=PACKAGES + ["no-such-package"], progress=False
    )
    assert "no-such-package" in manifest["failed_packages"]
    assert "could not download no-such-package" in caplog.text

    rows = {}
    for split in ("train", "valid", "test"):
        path = out / f"{split}.csv"
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            assert next(reader) == ["labels", "text"]
            rows[split] = list(reader)
        assert manifest["files"][f"{split}.csv"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert manifest["files"][f"{split}.csv"]["rows"] == len(rows[split])
    # Three sources per language: one in each split, every language present everywhere.
    for split, split_rows in rows.items():
        assert sorted(label for label, _ in split_rows) == sorted(LANGUAGES)
        assert manifest["counts"][split] == dict.fromkeys(LANGUAGES, 1)
    for lang in LANGUAGES:
        assert sorted(v["split"] for v in manifest["sources"][lang].values()) == ["test", "train", "valid"]
    english = {text for split_rows in rows.values() for label, text in split_rows if label == "en"}
    assert english == {m["en"] for m in MESSAGES}  # msgids; the en_GB msgstrs are ignored
    assert {p["name"]: p["version"] for p in manifest["packages"]} == dict.fromkeys(PACKAGES, "1.0-1")
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["counts"] == manifest["counts"]
    assert manifest["seed"] == 3 and manifest["cap_per_language"] == 100 and manifest["builder_version"]

    again = corpus.build_corpus(
        tmp_path / "again", deb_cache, cap_per_language=100, seed=3, packages=PACKAGES, progress=False
    )
    assert again["files"] == manifest["files"]  # reproducible byte for byte
    assert split_overlaps(split_paths(out)) == {}
    assert manifest_mismatches(out) == []


def test_build_corpus_names_languages_without_texts(deb_cache, tmp_path):
    with pytest.raises(UserError, match=r"no usable texts for language\(s\) ar, bg, el, es, "):
        corpus.build_corpus(tmp_path / "out", deb_cache, packages=["fake-de-only"], progress=False)


def test_build_corpus_fails_clearly_when_nothing_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "_apt_download", lambda pkgs, cache: "E: Unable to locate package")
    monkeypatch.setattr(corpus, "_require_tool", lambda name, why: None)
    with pytest.raises(UserError, match="apt-get download failed for every package"):
        corpus.build_corpus(tmp_path / "out", tmp_path / "cache", packages=["nope"], progress=False)


def test_build_corpus_rejects_tiny_cap(tmp_path):
    with pytest.raises(UserError, match="cap_per_language"):
        corpus.build_corpus(tmp_path / "out", tmp_path / "cache", cap_per_language=1, progress=False)


def test_build_corpus_rejects_an_empty_train_cap_before_downloading(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "download_packages", lambda *a: pytest.fail("downloaded before checking"))
    with pytest.raises(UserError, match="train_cap must be at least 1"):
        corpus.build_corpus(tmp_path / "out", tmp_path / "cache", train_cap=0, progress=False)


# --------------------------------------------------------------------------------------------
# leakage between splits, and the manifest against the files: the real corpus and fixtures

REAL_CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def split_paths(corpus_dir: Path) -> dict[str, Path]:
    return {split: corpus_dir / f"{split}.csv" for split in SPLITS}


def read_rows(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["labels", "text"], f"{path}: not papluca's header"
        return [(label, text) for label, text in reader]


def split_overlaps(paths: dict[str, Path]) -> dict[tuple[str, str], list[str]]:
    """Texts of one split that another split also holds, compared by the builder's own dedup key (case,
    punctuation and digits ignored: what deduplicate treats as one text), whatever their labels.
    {(split, later split): [texts of the first]}; empty when nothing leaks."""
    keys = {split: {tf.dedup_key(text): text for _, text in read_rows(path)} for split, path in paths.items()}
    overlaps = {}
    for first, second in itertools.combinations(keys, 2):
        shared = keys[first].keys() & keys[second].keys()
        if shared:
            overlaps[(first, second)] = sorted(keys[first][key] for key in shared)
    return overlaps


def manifest_mismatches(corpus_dir: Path) -> list[str]:
    """Where manifest.json disagrees with the CSV files beside it: counts per language, totals, rows, sha256."""
    manifest = json.loads((corpus_dir / "manifest.json").read_text(encoding="utf-8"))
    problems = []
    for split, path in split_paths(corpus_dir).items():
        counted = Counter(label for label, _ in read_rows(path))
        recorded = manifest["files"][f"{split}.csv"]
        if counted != Counter(manifest["counts"][split]):  # a missing language counts as 0 on both sides
            problems.append(f"{split}: texts per language {dict(counted)}, manifest {manifest['counts'][split]}")
        if not manifest["totals"][split] == recorded["rows"] == counted.total():
            problems.append(f"{split}: {counted.total()} rows, manifest {manifest['totals'][split]}/{recorded['rows']}")
        if recorded["sha256"] != hashlib.sha256(path.read_bytes()).hexdigest():
            problems.append(f"{split}: sha256 differs from the manifest's")
    return problems


def _write_corpus(corpus_dir: Path, rows: dict[str, list[tuple[str, str]]]) -> dict[str, Path]:
    corpus_dir.mkdir(parents=True, exist_ok=True)
    files = {
        f"{split}.csv": {"rows": len(r), "sha256": corpus.write_split(corpus_dir / f"{split}.csv", r)}
        for split, r in rows.items()
    }
    counts = {split: dict(Counter(label for label, _ in r)) for split, r in rows.items()}
    manifest = {"counts": counts, "totals": {s: len(r) for s, r in rows.items()}, "files": files}
    (corpus_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return split_paths(corpus_dir)


CLEAN_ROWS = {
    "train": [("de", "Die Datei wurde gespeichert."), ("fr", "Le fichier a été enregistré.")],
    "valid": [("de", "Der Ordner ist leer."), ("fr", "Le dossier est vide.")],
    "test": [("de", "Das Fenster wird geschlossen."), ("fr", "La fenêtre se ferme.")],
}


def test_split_overlaps_is_empty_for_disjoint_splits(tmp_path):
    assert split_overlaps(_write_corpus(tmp_path, CLEAN_ROWS)) == {}


@pytest.mark.parametrize(
    "leak, split",
    [
        (("de", "Die Datei wurde gespeichert."), "test"),  # the very same row
        (("nl", "die Datei wurde gespeichert"), "valid"),  # another label, case and punctuation
        (("fr", "Le fichier a été enregistré (2 fois)."), "test"),  # vs "…(3 fois)" in train below
    ],
)
def test_split_overlaps_finds_a_text_in_two_splits(tmp_path, leak, split):
    rows = {s: list(r) for s, r in CLEAN_ROWS.items()}
    rows["train"].append(("fr", "Le fichier a été enregistré (3 fois)."))
    rows[split].append(leak)
    overlaps = split_overlaps(_write_corpus(tmp_path, rows))
    assert list(overlaps) == [("train", split)]
    assert len(overlaps[("train", split)]) == 1


def test_manifest_mismatches_names_a_stale_manifest(tmp_path):
    paths = _write_corpus(tmp_path, CLEAN_ROWS)
    assert manifest_mismatches(tmp_path) == []
    with open(paths["test"], "a", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerow(["fr", "Une ligne ajoutée après le manifeste."])
    problems = manifest_mismatches(tmp_path)
    assert [p.split(":")[0] for p in problems] == ["test", "test", "test"]


def _require_real_corpus() -> Path:
    missing = [p.name for p in [*split_paths(REAL_CORPUS).values(), REAL_CORPUS / "manifest.json"] if not p.is_file()]
    if missing:
        pytest.skip(f"no real corpus in {REAL_CORPUS} ({', '.join(missing)} missing): `langdetect corpus` builds it")
    return REAL_CORPUS


def test_real_corpus_has_no_text_in_two_splits():
    overlaps = split_overlaps(split_paths(_require_real_corpus()))
    assert overlaps == {}, {pair: texts[:5] for pair, texts in overlaps.items()}


def test_real_corpus_manifest_matches_its_files():
    assert manifest_mismatches(_require_real_corpus()) == []

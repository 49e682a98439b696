"""Loading datasets in papluca's format, and the clear errors for bad data."""

import pandas as pd
import pytest
from conftest import MINI_CORPUS

from langdetect_ops.cli import main
from langdetect_ops.config import LANGUAGES
from langdetect_ops.errors import UserError
from training.dataset import load_dataset


def write_splits(directory, rows, suffix=".csv", names=("train", "valid", "test")):
    directory.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    for name in names:
        path = directory / f"{name}{suffix}"
        frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    return directory


def all_languages(text="some text"):
    return [{"labels": lang, "text": f"{text} {lang}"} for lang in LANGUAGES]


def test_mini_corpus_loads_with_every_language():
    splits = load_dataset(MINI_CORPUS)
    assert set(splits) == {"train", "valid", "test"}
    assert set(splits["train"].labels) == set(range(len(LANGUAGES)))
    assert len(splits["train"].sha256) == 64


def test_parquet_and_validation_name_are_accepted(tmp_path):
    write_splits(tmp_path, all_languages(), ".parquet", names=("train", "validation", "test"))
    splits = load_dataset(tmp_path)
    assert len(splits["valid"]) == len(LANGUAGES)
    assert splits["valid"].path.name == "validation.parquet"


def test_missing_directory(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(tmp_path / "nope")


def test_missing_split(tmp_path):
    write_splits(tmp_path, all_languages(), names=("train", "test"))
    with pytest.raises(UserError, match="missing the valid split"):
        load_dataset(tmp_path)


def test_wrong_columns(tmp_path):
    write_splits(tmp_path, [{"lang": "en", "sentence": "hello"}])
    with pytest.raises(UserError, match=r"missing column\(s\) \['labels', 'text'\]"):
        load_dataset(tmp_path)


def test_not_a_table(tmp_path):
    for name in ("train", "valid", "test"):
        (tmp_path / f"{name}.parquet").write_bytes(b"\x00\x01 definitely not parquet")
    with pytest.raises(UserError, match="cannot be read as parquet"):
        load_dataset(tmp_path)


def test_unknown_labels(tmp_path):
    write_splits(tmp_path, all_languages() + [{"labels": "xx", "text": "?"}, {"labels": "klingon", "text": "?"}])
    with pytest.raises(UserError, match=r"unknown label\(s\) \['klingon', 'xx'\]"):
        load_dataset(tmp_path)


def test_empty_language(tmp_path):
    rows = [r for r in all_languages() if r["labels"] != "sw"]
    write_splits(tmp_path, rows)
    with pytest.raises(UserError, match=r"no texts for language\(s\) sw"):
        load_dataset(tmp_path)


def test_blank_texts_are_dropped_not_counted(tmp_path):
    write_splits(tmp_path, all_languages() + [{"labels": "en", "text": "   "}])
    assert len(load_dataset(tmp_path)["train"]) == len(LANGUAGES)


def test_cli_reports_bad_data_with_exit_2(tmp_path, capsys):
    assert main(["train", "--profile", "smoke", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err

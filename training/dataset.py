"""Load and validate a dataset in papluca/language-identification's format.

Layout: DIR/{train,valid,test}.{csv,parquet} (``validation`` is accepted for ``valid``),
columns ``labels`` (one of the 20 codes) and ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from langdetect_ops.config import LANGUAGES, SPLITS
from langdetect_ops.errors import UserError
from langdetect_ops.integrity import file_sha256

_ALIASES = {"valid": ("valid", "validation", "val"), "train": ("train",), "test": ("test",)}
_SUFFIXES = (".csv", ".parquet")


@dataclass
class Split:
    name: str
    path: Path
    texts: list[str]
    labels: list[int]  # indices into LANGUAGES
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)


def load_dataset(data_dir: Path, languages: tuple[str, ...] = LANGUAGES) -> dict[str, Split]:
    """Returns {train, valid, test}; raises UserError with a precise message on any problem."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(
            f"data directory {data_dir} does not exist (run `langdetect corpus` first, "
            f"or pass --data DIR with train/valid/test .csv or .parquet files)"
        )
    splits = {name: _load_split(name, _find_split_file(data_dir, name), languages) for name in SPLITS}
    for name in ("train", "test"):
        missing = [lang for i, lang in enumerate(languages) if i not in set(splits[name].labels)]
        if missing:
            raise UserError(
                f"{splits[name].path}: no texts for language(s) {', '.join(missing)}; "
                f"every one of the {len(languages)} labels needs examples"
            )
    return splits


def _find_split_file(data_dir: Path, split: str) -> Path:
    for stem in _ALIASES[split]:
        for suffix in _SUFFIXES:
            path = data_dir / f"{stem}{suffix}"
            if path.is_file():
                return path
    expected = " or ".join(f"{s}{x}" for s in _ALIASES[split] for x in _SUFFIXES)
    raise UserError(f"{data_dir}: missing the {split} split (expected {expected})")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError, ImportError) as exc:
        raise UserError(f"{path}: cannot be read as {path.suffix[1:]}: {exc}") from exc


def _load_split(name: str, path: Path, languages: tuple[str, ...]) -> Split:
    frame = _read_table(path)
    missing = {"labels", "text"} - set(frame.columns)
    if missing:
        raise UserError(
            f"{path}: missing column(s) {sorted(missing)}; papluca's format has "
            f"columns 'labels' and 'text' (found {list(frame.columns)})"
        )
    labels = frame["labels"].astype(str).str.strip()
    unknown = sorted(set(labels) - set(languages))
    if unknown:
        raise UserError(f"{path}: unknown label(s) {unknown[:10]}; expected one of {' '.join(languages)}")
    texts = frame["text"].astype(str).str.strip()
    keep = texts.str.len() > 0  # blank rows carry no signal; drop rather than fail
    if not keep.any():
        raise UserError(f"{path}: the {name} split has no non-empty texts")
    index = {lang: i for i, lang in enumerate(languages)}
    return Split(
        name=name,
        path=path,
        texts=texts[keep].tolist(),
        labels=[index[lab] for lab in labels[keep]],
        sha256=file_sha256(path),
    )

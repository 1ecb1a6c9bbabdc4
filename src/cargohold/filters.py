"""containerd's filter language: parse filter strings once, then match objects through adaptors.

``walk`` and ``list_statuses`` take filter strings in the grammar of containerd's ``filters``
package; this module parses them the way containerd's scanner and parser do and evaluates them
with containerd's matching rules.

Grammar (what the scanner accepts, which is looser than containerd's own comment)::

    filters   := selectors ("," selectors is AND; several strings are OR)
    selectors := selector ("," selector)*
    selector  := fieldpath [operator value]
    fieldpath := field ("." field)*
    field     := [A-Za-z0-9_]+ | "..."    ("-" is not a field character: quote such parts)
    operator  := "==" | "!=" | "~="
    value     := quoted | <a run of printable non-space characters without ",">
    quoted    := "..." ; after "~=" also /.../ or |...|

Whitespace may precede a field, an operator and a value, but not a ``,``, a ``.`` or the end of
the string (``a==b ,c`` is malformed, as in containerd). Quoted text uses Go's escapes:
``\\a \\b \\f \\n \\r \\t \\v \\\\``, the delimiter itself, ``\\ooo`` and ``\\xhh`` (one byte each),
``\\uhhhh`` and ``\\Uhhhhhhhh``. An empty filter string matches everything.

Matching, for the value ``v`` and presence ``p`` an adaptor reports for a field path:

- ``field``: ``p``. Adaptors report an empty scalar (an unset ``expected``) as absent.
- ``field==x``: ``p and v == x``.
- ``field!=x``: ``v != x``; an absent field reads as ``""``, so it matches unless ``x`` is empty.
- ``field~=re``: a regex *search* (not a full match) in ``v``; an absent field reads as ``""``.
- ``labels`` with no key looks up the empty key, which never exists: it is absent.
  ``labels.a.b`` (unquoted parts) looks up the key ``a.b``. Unknown fields are absent.

Where cargohold deliberately differs from containerd:

- A regex that does not compile is an ``InvalidArgumentError`` at parse time (containerd logs it
  and matches nothing).
- Error positions count characters, not UTF-8 bytes.
- Limits: one call takes at most ``MAX_FILTERS`` filter strings of at most ``MAX_FILTER_BYTES``
  UTF-8 bytes each, with at most ``MAX_REGEXES`` ``~=`` selectors among them.

Regular expressions have Go's ``regexp`` syntax and meaning and are matched by RE2 in time linear
in the value's length (see ``filters_re2`` for the few places where RE2 and Go differ).
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cargohold.errors import InvalidArgumentError
from cargohold.filters_re2 import GoRegex, compile_go_regex
from cargohold.types import Info, Status

__all__ = [
    "MAX_FILTERS",
    "MAX_FILTER_BYTES",
    "MAX_REGEXES",
    "Adaptor",
    "Filter",
    "info_adaptor",
    "parse_filters",
    "quote",
    "status_adaptor",
]

MAX_FILTERS = 64
"""Filter strings one call may pass (they are ORed)."""
MAX_FILTER_BYTES = 16384
"""UTF-8 bytes in one filter string: room for an equality on a 4 KiB label, fully escaped."""
MAX_REGEXES = 32
"""``~=`` selectors in all the filter strings of one call (each compiles to an RE2 program)."""

Adaptor = Callable[[Sequence[str]], tuple[str, bool]]
"""Maps a field path (its dot-separated parts) to ``(value, present)``."""


class _Op(enum.Enum):
    PRESENT = "?"
    EQUAL = "=="
    NOT_EQUAL = "!="
    MATCHES = "~="


@dataclass(frozen=True)
class _Selector:
    fieldpath: tuple[str, ...]
    op: _Op
    value: str = ""
    regex: GoRegex | None = None

    def match(self, adaptor: Adaptor) -> bool:
        value, present = adaptor(self.fieldpath)
        if self.op is _Op.PRESENT:
            return present
        if self.op is _Op.EQUAL:
            return present and value == self.value
        if self.op is _Op.NOT_EQUAL:
            return value != self.value
        assert self.regex is not None
        return self.regex.search(value)


@dataclass(frozen=True)
class Filter:
    """A parsed filter: it matches when every selector of at least one alternative matches."""

    alternatives: tuple[tuple[_Selector, ...], ...]

    def match(self, adaptor: Adaptor) -> bool:
        """Whether the object seen through ``adaptor`` passes the filter."""
        return any(all(s.match(adaptor) for s in sels) for sels in self.alternatives)


def parse_filters(*filters: str) -> Filter:
    """Parse filter strings (OR of them) into a ``Filter``; none, or an empty one, matches all.

    Raises ``InvalidArgumentError`` naming the position of the first problem.
    """
    if not filters:
        return Filter(((),))
    if len(filters) > MAX_FILTERS:
        raise InvalidArgumentError(f"{len(filters)} filters given; the limit is {MAX_FILTERS}")
    for text in filters:
        if not isinstance(text, str):
            raise InvalidArgumentError(f"a filter must be a string, got {type(text).__name__}")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_FILTER_BYTES:
            raise InvalidArgumentError(
                f"filter {text[:80]!r}... is {size} bytes long; the limit is {MAX_FILTER_BYTES}"
            )
    parsers = [_Parser(text) for text in filters]
    # Every string is parsed before any regex compiles, so a call over the limit costs no RE2.
    pending = [parser.parse() if parser.text else [] for parser in parsers]
    regexes = sum(sel.op is _Op.MATCHES for sels in pending for sel, _ in sels)
    if regexes > MAX_REGEXES:
        raise InvalidArgumentError(
            f"the filters hold {regexes} regular expressions; the limit is {MAX_REGEXES}"
        )
    pairs = zip(parsers, pending, strict=True)
    return Filter(tuple(parser.compiled(sels) for parser, sels in pairs))


def info_adaptor(info: Info) -> Adaptor:
    """Adaptor for a committed blob: ``digest``, ``size`` (decimal string), ``labels.<key>``."""

    def field(path: Sequence[str]) -> tuple[str, bool]:
        if not path:
            return "", False
        if path[0] == "digest":
            return info.digest, bool(info.digest)
        if path[0] == "size":
            return str(info.size), True
        if path[0] == "labels":
            if not info.labels:
                return "", False
            key = ".".join(path[1:])
            if key in info.labels:
                return info.labels[key], True
        return "", False

    return field


def status_adaptor(status: Status) -> Adaptor:
    """Adaptor for an ingestion: ``ref`` and ``expected`` (absent while empty)."""

    def field(path: Sequence[str]) -> tuple[str, bool]:
        # Like containerd's adaptors, only the first part of the path is looked at.
        if path and path[0] == "ref":
            return status.ref, bool(status.ref)
        if path and path[0] == "expected":
            return status.expected, bool(status.expected)
        return "", False

    return field


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE_OF = {v: k for k, v in _SIMPLE_ESCAPES.items()}


def quote(value: str, delimiter: str = '"') -> str:
    """Quote ``value`` so that the filter parser reads it back unchanged.

    ``delimiter`` is ``"`` (fields and values) or, for regex values only, ``/`` or ``|``.
    Bytes smuggled in by ``surrogateescape`` are written as ``\\xhh``; other lone surrogates
    cannot be represented and raise ``InvalidArgumentError``.
    """
    if delimiter not in _QUOTES:
        raise InvalidArgumentError(f"invalid quote delimiter {delimiter!r}")
    out = [delimiter]
    for ch in value:
        code = ord(ch)
        if ch in (delimiter, "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPE_OF:
            out.append("\\" + _ESCAPE_OF[ch])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise InvalidArgumentError(f"cannot quote lone surrogate U+{code:04X}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append(delimiter)
    return "".join(out)


# Go's unicode.IsSpace: the White_Space property (Python's str.isspace adds U+001C..U+001F).
_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
_QUOTES = frozenset('"/|')
_CONTEXT = 100  # characters of a filter shown on each side of an error
_OPERATOR_CHARS = frozenset("=!~")
_FIELD_CHARS = frozenset("_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OPERATORS = {"==": _Op.EQUAL, "!=": _Op.NOT_EQUAL, "~=": _Op.MATCHES}
_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")


def _is_value_char(ch: str) -> bool:
    # Go's isValueRune: letters, marks, numbers, punctuation and symbols, but not "," or space.
    return ch != "," and ch not in _SPACES and unicodedata.category(ch)[0] in "LMNPS"


def _shown(text: str) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _illegal(ch: str) -> str | None:
    """The scanner's complaint about a character that may not appear anywhere, if any."""
    if ch == "\x00":
        return "unexpected null"
    if "\ud800" <= ch <= "\udfff":
        return "invalid UTF-8"
    return None


class _Parser:
    """Recursive descent over one filter string, mirroring containerd's scanner and parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> list[tuple[_Selector, int]]:
        """The selectors (regexes not compiled yet) and where each value starts."""
        pending = [self._selector()]
        while (ch := self._peek()) is not None:
            if ch != ",":
                raise self._error(self.pos, f"unexpected input {ch!r}")
            self.pos += 1
            pending.append(self._selector())
        return pending

    def compiled(self, pending: list[tuple[_Selector, int]]) -> tuple[_Selector, ...]:
        """The selectors of ``parse`` with their regexes compiled."""
        return tuple(self._compiled(selector, pos) for selector, pos in pending)

    def _compiled(self, selector: _Selector, pos: int) -> _Selector:
        if selector.op is not _Op.MATCHES:
            return selector
        try:
            regex = compile_go_regex(selector.value)
        except InvalidArgumentError as exc:
            msg = f"invalid regular expression {selector.value[:200]!r}: {exc}"
            raise self._error(pos, msg) from None
        return _Selector(selector.fieldpath, selector.op, selector.value, regex)

    def _error(self, pos: int, msg: str) -> InvalidArgumentError:
        text = self.text
        # Long filters are shown in part, so that the message fits in a gRPC status.
        before = text[max(0, pos - _CONTEXT) : pos]
        after = text[pos + 1 : pos + 1 + _CONTEXT]
        if pos < len(text):
            where = f"[{_shown(before)} >|{_shown(text[pos])}|< {_shown(after)}]"
        else:
            where = f"[{_shown(before)}]"
        shown = text if len(text) <= 2 * _CONTEXT else text[: 2 * _CONTEXT] + "..."
        return InvalidArgumentError(f"invalid filter {shown!r}: {msg} at position {pos} {where}")

    def _peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def _skip_space(self) -> str | None:
        while (ch := self._peek()) is not None and ch in _SPACES:
            self.pos += 1
        return ch

    def _selector(self) -> tuple[_Selector, int]:
        """The next selector (its regex not compiled yet) and where its value starts."""
        fieldpath = self._fieldpath()
        if self._peek() in (",", None):
            return _Selector(fieldpath, _Op.PRESENT), self.pos
        op = self._operator()
        self._skip_space()
        start = self.pos
        return _Selector(fieldpath, op, self._value(allow_alt_quotes=op is _Op.MATCHES)), start

    def _fieldpath(self) -> tuple[str, ...]:
        parts = [self._field()]
        while self._peek() == ".":
            self.pos += 1
            parts.append(self._field())
        return tuple(parts)

    def _field(self) -> str:
        ch = self._skip_space()
        start = self.pos
        if ch is None:
            raise self._error(start, "expected field or quoted")
        if ch in _QUOTES:
            raw = self._scan_quoted()
            if ch != '"':
                raise self._error(start, "invalid quote encountered")
            return self._unquote(start, raw)
        if (problem := _illegal(ch)) is not None:
            raise self._error(start, problem)
        if ch not in _FIELD_CHARS:
            raise self._error(start, "expected field or quoted")
        while (ch := self._peek()) is not None and ch in _FIELD_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def _operator(self) -> _Op:
        ch = self._skip_space()
        start = self.pos
        if ch is not None and ch in _OPERATOR_CHARS:
            while (ch := self._peek()) is not None and ch in _OPERATOR_CHARS:
                self.pos += 1
            token = self.text[start : self.pos]
            if token not in _OPERATORS:
                raise self._error(start, f"unsupported operator {token!r}")
            return _OPERATORS[token]
        if ch is not None and ch in _QUOTES:
            self._scan_quoted()  # a malformed quote is reported as such, like containerd
        elif ch is not None and (problem := _illegal(ch)) is not None:
            raise self._error(start, problem)
        raise self._error(start, 'expected an operator ("=="|"!="|"~=")')

    def _value(self, *, allow_alt_quotes: bool) -> str:
        ch = self._skip_space()
        start = self.pos
        if ch is None or ch in ",." or ch in _OPERATOR_CHARS:
            raise self._error(start, "expected value or quoted")
        if ch in _QUOTES:
            raw = self._scan_quoted()
            if ch != '"' and not allow_alt_quotes:
                raise self._error(start, "invalid quote encountered")
            return self._unquote(start, raw)
        if (problem := _illegal(ch)) is not None:
            raise self._error(start, problem)
        self.pos += 1  # the first character of a bare value is taken whatever it is
        while (ch := self._peek()) is not None and _is_value_char(ch):
            self.pos += 1
        return self.text[start : self.pos]

    def _scan_quoted(self) -> str:
        """Consume a quoted literal (checking its escapes) and return its raw text."""
        text, start = self.text, self.pos
        quote_char = text[start]
        i = start + 1
        while True:
            ch = text[i] if i < len(text) else None
            if ch is None or ch == "\n":
                raise self._error(start, "quoted literal not terminated")
            if (problem := _illegal(ch)) is not None:
                raise self._error(start, problem)
            if ch == quote_char:
                break
            if ch != "\\":
                i += 1
                continue
            esc = text[i + 1] if i + 1 < len(text) else ""
            if esc in _SIMPLE_ESCAPES or esc in ("\\", quote_char):
                i += 2
                continue
            digits, allowed = {"x": (2, _HEX), "u": (4, _HEX), "U": (8, _HEX)}.get(esc, (0, _HEX))
            first = i + 2
            if esc in _OCTAL:
                digits, allowed, first = 3, _OCTAL, i + 1
            if digits == 0:
                raise self._error(start, "illegal escape sequence")
            run = text[first : first + digits]
            if len(run) < digits or any(c not in allowed for c in run):
                raise self._error(start, "illegal numeric escape sequence")
            i = first + digits
        self.pos = i + 1
        return text[start : i + 1]

    def _unquote(self, pos: int, raw: str) -> str:
        try:
            return _unquote_body(raw[1:-1], raw[0])
        except ValueError as exc:
            raise self._error(pos, f"unquoting failed: {exc}") from exc


def _unquote_body(body: str, quote_char: str) -> str:
    """Decode the escapes of an already scanned quoted literal, as Go's ``strconv.Unquote`` does.

    ``\\x`` and octal escapes produce single bytes; the result is decoded as UTF-8 with
    ``surrogateescape`` so that invalid byte sequences survive (and never equal a real value).
    """
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        esc = body[i + 1]
        i += 2
        if esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc].encode()
        elif esc in ("\\", quote_char):
            out += esc.encode()
        elif esc in _OCTAL:
            byte = int(body[i - 1 : i + 2], 8)
            if byte > 0xFF:
                raise ValueError("quote syntax error")
            out.append(byte)
            i += 2
        elif esc == "x":
            out.append(int(body[i : i + 2], 16))
            i += 2
        else:  # u or U: a code point, written as UTF-8; Go writes U+FFFD for a surrogate
            width = 4 if esc == "u" else 8
            code = int(body[i : i + width], 16)
            i += width
            if code > 0x10FFFF:
                raise ValueError("quote syntax error")
            out += ("\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)).encode()
    return out.decode("utf-8", "surrogateescape")

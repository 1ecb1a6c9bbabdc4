"""Go ``regexp`` (RE2) syntax, translated into an equivalent Python ``re`` pattern.

containerd compiles ``~=`` filter values with Go's ``regexp``; Python's ``re`` reads many of the
same patterns differently. ``translate_go_regex`` parses the Go syntax and writes a Python pattern
with the Go meaning, so that a search gives the same answer:

- ``$`` (without ``m``) is end of text: ``\\Z``; ``\\z`` is ``\\Z``; Python's ``\\Z`` is rejected.
- ``\\d \\s \\w`` and POSIX ``[[:name:]]`` classes are ASCII; ``\\s`` is ``[\\t\\n\\f\\r ]``;
  ``\\b``/``\\B`` are ASCII word boundaries.
- Flags ``(?imsU)`` may appear anywhere and last to the end of the enclosing group; ``U`` swaps
  greedy and lazy. Each scope is written as an explicit Python scoped group.
- ``{`` that does not start ``{n}``, ``{n,}`` or ``{n,m}`` is a literal (so ``{,n}`` is too);
  counts above 1000 are errors; a quantifier may not follow another (no possessives).
- Escapes: ``\\a \\f \\n \\r \\t \\v``, octal ``\\0``-``\\777`` (a lone ``\\1``-``\\7`` is a
  backreference, rejected), ``\\xhh``, ``\\x{h...}``, ``\\Q...\\E``, any ASCII punctuation.
- Groups: ``(...)``, ``(?:...)``, ``(?P<name>...)``, ``(?<name>...)``; everything else after
  ``(?`` (lookaround, comments, atomic groups) is rejected, as Go rejects it.

``\\p{...}``/``\\P{...}`` (Unicode classes) are not supported and raise ``RegexSyntaxError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RegexSyntaxError", "translate_go_regex"]

_MAX_CODE = 0x10FFFF
_MAX_REPEAT = 1000
Ranges = list[tuple[int, int]]

_DIGIT: Ranges = [(0x30, 0x39)]
_SPACE: Ranges = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_PERL_CLASSES = {"d": _DIGIT, "s": _SPACE, "w": _WORD}
_POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": _DIGIT,
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": _WORD,
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_CONTROL_ESCAPES = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_WORD_CLASS = "[0-9A-Za-z_]"
_BOUNDARY = f"(?-i:(?<={_WORD_CLASS})(?!{_WORD_CLASS})|(?<!{_WORD_CLASS})(?={_WORD_CLASS}))"
_NOT_BOUNDARY = f"(?-i:(?<={_WORD_CLASS})(?={_WORD_CLASS})|(?<!{_WORD_CLASS})(?!{_WORD_CLASS}))"
# Go reads "{" as a literal unless a well-formed count (no leading zeros) follows.
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(,(0|[1-9][0-9]*)?)?\}")
_CAPTURE_NAME = re.compile(r"[0-9A-Za-z_]+")


class RegexSyntaxError(ValueError):
    """The pattern is not valid Go regexp syntax (or uses a construct not supported here)."""


def translate_go_regex(pattern: str) -> str:
    """Translate a Go ``regexp`` pattern into a Python ``re`` pattern with the same matches."""
    if any("\ud800" <= ch <= "\udfff" for ch in pattern):
        raise RegexSyntaxError("invalid UTF-8")
    translator = _Translator(pattern)
    out = translator.alternation(_Flags())
    if translator.pos < len(pattern):
        raise RegexSyntaxError(f"unexpected ) at offset {translator.pos}")
    return out


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    nxt = 0
    for lo, hi in sorted(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= _MAX_CODE:
        out.append((nxt, _MAX_CODE))
    return out


def _merge(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _class(ranges: Ranges, *, negated: bool = False) -> str:
    ranges = _merge(ranges)
    if not ranges:  # an empty set: match nothing, or (negated) anything
        ranges, negated = [(0, _MAX_CODE)], not negated
    body = "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


@dataclass(frozen=True)
class _Flags:
    fold: bool = False  # i
    multiline: bool = False  # m
    dot_nl: bool = False  # s
    ungreedy: bool = False  # U

    def scope(self) -> str:
        """A Python scoped group opener stating i, m and s explicitly."""
        pairs = (("i", self.fold), ("m", self.multiline), ("s", self.dot_nl))
        on = "".join(f for f, v in pairs if v)
        off = "".join(f for f, v in pairs if not v)
        return f"(?{on}-{off}:" if off else f"(?{on}:"


@dataclass
class _Translator:
    text: str
    pos: int = 0
    names: set[str] = field(default_factory=set)

    def _peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def alternation(self, flags: _Flags) -> str:
        """Translate up to an unmatched ``)`` or the end; flags set mid-way are scoped here."""
        out: list[str] = []
        scopes: list[str] = []  # openers of flag scopes started by (?flags) in this group
        last: int | None = None  # index in out of the item a quantifier would repeat
        repeated = False  # whether out[last] already carries a quantifier
        while (ch := self._peek()) and ch != ")":
            if ch == "|":
                self.pos += 1
                out += [")" * len(scopes), "|", *scopes]
                last = None
            elif ch in "*+?" or (ch == "{" and _REPEAT.match(self.text, self.pos)):
                if last is None:
                    raise RegexSyntaxError(f"missing argument to repetition operator at {self.pos}")
                quantifier = self._quantifier(flags)
                # Go repeats the last item even across a (?flags) group: a(?i)* is a*.
                item = out[last]
                out[last] = f"(?:{item}){quantifier}" if repeated else item + quantifier
                repeated = True
            elif ch == "(" and (new_flags := self._bare_flags(flags)) is not None:
                flags = new_flags
                scopes.append(flags.scope())
                out.append(scopes[-1])
            elif ch == "\\" and self._peek(1) == "Q":
                end = self.text.find("\\E", self.pos + 2)
                literal = self.text[self.pos + 2 : len(self.text) if end < 0 else end]
                self.pos = len(self.text) if end < 0 else end + 2
                for c in literal:  # each character is its own item, as in Go
                    out.append(re.escape(c))
                    last, repeated = len(out) - 1, False
            else:
                out.append(self._atom(flags))
                last, repeated = len(out) - 1, False
        out.append(")" * len(scopes))
        return "".join(out)

    def _quantifier(self, flags: _Flags) -> str:
        ch = self._peek()
        if ch == "{":
            m = _REPEAT.match(self.text, self.pos)
            assert m is not None
            self.pos = m.end()
            low = int(m.group(1))
            high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            if low > _MAX_REPEAT or (high is not None and not low <= high <= _MAX_REPEAT):
                raise RegexSyntaxError(f"invalid repeat count {m.group(0)}")
            text = m.group(0)
        else:
            self.pos += 1
            text = ch
        lazy = self._peek() == "?"
        if lazy:
            self.pos += 1
        nxt = self._peek()
        if (nxt and nxt in "*+?") or (nxt == "{" and _REPEAT.match(self.text, self.pos)):
            raise RegexSyntaxError(f"invalid nested repetition operator at {self.pos}")
        return text + ("?" if lazy != flags.ungreedy else "")

    def _bare_flags(self, flags: _Flags) -> _Flags | None:
        """If a ``(?flags)`` group starts here, consume it and return the new flags."""
        m = re.compile(r"\(\?([imsU-]*)\)").match(self.text, self.pos)
        if m is None:
            return None
        new = self._parse_flags(m.group(1), flags)
        self.pos = m.end()
        return new

    @staticmethod
    def _parse_flags(spec: str, flags: _Flags) -> _Flags:
        on, _, off = spec.partition("-")
        if "-" in off or (spec.endswith("-")):
            raise RegexSyntaxError(f"invalid or unsupported Perl syntax (?{spec}")
        values = {"i": flags.fold, "m": flags.multiline, "s": flags.dot_nl, "U": flags.ungreedy}
        for letters, value in ((on, True), (off, False)):
            for letter in letters:
                values[letter] = value
        return _Flags(values["i"], values["m"], values["s"], values["U"])

    def _atom(self, flags: _Flags) -> str:
        ch = self._peek()
        self.pos += 1
        if ch == "(":
            return self._group(flags)
        if ch == "[":
            return self._bracket()
        if ch == ".":
            return "."
        if ch == "^":
            return "(?:^)"
        if ch == "$":
            return "(?:$)" if flags.multiline else "(?:\\Z)"
        if ch == "\\":
            return self._escape()
        return re.escape(ch)

    def _group(self, flags: _Flags) -> str:
        if self._peek() == "?":
            m = re.compile(r"\?(?:P?<([^>]*)>|([imsU-]*):)").match(self.text, self.pos)
            if m is None:
                raise RegexSyntaxError(f"invalid or unsupported Perl syntax at {self.pos - 1}")
            self.pos = m.end()
            if m.group(2) is not None:
                flags = self._parse_flags(m.group(2), flags)
            else:
                name = m.group(1)
                if not _CAPTURE_NAME.fullmatch(name) or name in self.names:
                    raise RegexSyntaxError(f"invalid named capture {name!r}")
                self.names.add(name)
        body = self.alternation(flags)
        if self._peek() != ")":
            raise RegexSyntaxError("missing closing )")
        self.pos += 1
        return f"{flags.scope()}{body})"

    def _escape(self) -> str:
        ch = self._peek()
        if ch in ("A", "z", "b", "B"):
            self.pos += 1
            return {"A": "(?:\\A)", "z": "(?:\\Z)", "b": _BOUNDARY, "B": _NOT_BOUNDARY}[ch]
        if ch.lower() in _PERL_CLASSES:
            self.pos += 1
            return _class(_PERL_CLASSES[ch.lower()], negated=ch.isupper())
        return re.escape(chr(self._escaped_char()))

    def _escaped_char(self) -> int:
        """The code point of a single-character escape (the text after a backslash)."""
        ch = self._peek()
        if not ch:
            raise RegexSyntaxError("trailing backslash at end of expression")
        self.pos += 1
        if ch in "1234567" and not ("0" <= self._peek() <= "7"):
            raise RegexSyntaxError(f"backreferences are not supported: \\{ch}")
        if "0" <= ch <= "7":
            digits = ch
            while len(digits) < 3 and "0" <= self._peek() <= "7":
                digits += self._peek()
                self.pos += 1
            return int(digits, 8)
        if ch == "x":
            m = re.compile(r"\{([0-9A-Fa-f]+)\}|[0-9A-Fa-f]{2}").match(self.text, self.pos)
            if m is None:
                raise RegexSyntaxError(f"invalid escape sequence at {self.pos - 2}")
            self.pos = m.end()
            code = int(m.group(1) or m.group(0), 16)
            if code > _MAX_CODE:
                raise RegexSyntaxError(f"invalid escape sequence \\x{m.group(0)}")
            return code
        if ch in _CONTROL_ESCAPES:
            return ord(_CONTROL_ESCAPES[ch])
        if ch in ("p", "P"):
            raise RegexSyntaxError("Unicode classes (\\p, \\P) are not supported")
        if ch < "\x80" and not ch.isalnum():
            return ord(ch)
        raise RegexSyntaxError(f"invalid escape sequence \\{ch}")

    def _bracket(self) -> str:
        negated = self._peek() == "^"
        if negated:
            self.pos += 1
        ranges: Ranges = []
        first = True
        while True:
            ch = self._peek()
            if not ch:
                raise RegexSyntaxError("missing closing ]")
            if ch == "]" and not first:
                self.pos += 1
                return _class(ranges, negated=negated)
            first = False
            if ch == "[" and self._peek(1) == ":":
                end = self.text.find(":]", self.pos + 2)
                if end >= 0:
                    name = self.text[self.pos + 2 : end]
                    posix = _POSIX_CLASSES.get(name.removeprefix("^"))
                    if posix is None:
                        raise RegexSyntaxError(f"invalid character class range [:{name}:]")
                    ranges += _complement(posix) if name.startswith("^") else posix
                    self.pos = end + 2
                    continue
            if ch == "\\" and self._peek(1).lower() in _PERL_CLASSES:
                letter = self._peek(1)
                self.pos += 2
                perl = _PERL_CLASSES[letter.lower()]
                ranges += _complement(perl) if letter.isupper() else perl
                continue
            low = self._class_char()
            high = low
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.pos += 1
                high = self._class_char()
                if high < low:
                    raise RegexSyntaxError(f"invalid character class range at {self.pos}")
            ranges.append((low, high))

    def _class_char(self) -> int:
        ch = self._peek()
        self.pos += 1
        return self._escaped_char() if ch == "\\" else ord(ch)

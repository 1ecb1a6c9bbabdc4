"""The containerd filter language: grammar, matching, adaptors and Go regexp semantics."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cargohold.errors import InvalidArgumentError
from cargohold.filters import (
    MAX_FILTER_BYTES,
    MAX_FILTERS,
    MAX_REGEXES,
    Adaptor,
    info_adaptor,
    parse_filters,
    quote,
    status_adaptor,
)
from cargohold.filters_re2 import GoRegex
from cargohold.types import Info, Status

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def adapt(fields: Mapping[str, str], labels: Mapping[str, str] | None = None) -> Adaptor:
    """An adaptor like containerd's test one: scalar fields (empty = absent) plus labels."""

    def field(path: Sequence[str]) -> tuple[str, bool]:
        if path[0] == "labels":
            key = ".".join(path[1:])
            if labels and key in labels:
                return labels[key], True
            return "", False
        value = fields.get(".".join(path), "")
        return value, value != ""

    return field


# The corpus of containerd's own filter test, with its expected results.
CORPUS = [
    adapt({"name": "foo"}, {"foo": "true"}),
    adapt({"name": "bar"}),
    adapt({"name": "foo"}, {"foo": "present", "more complex label": "present"}),
    adapt({"name": "bar"}, {"bar": "true"}),
    adapt({"name": "fooer"}, {'more complex label with \\ and "': "present"}),
    adapt({"name": "fooer"}, {'more complex label with \\ and ".post': "present"}),
    adapt({"name": "baz", "other": "too complex, yo"}),
    adapt({"name": "bazo", "other": "abc"}),
    adapt({"name": "compound"}, {"foo": "omg_asdf.asdf-qwer"}),
]

CORPUS_CASES = [
    ("", list(range(9))),
    ("name", list(range(9))),
    ("labels.foo", [0, 2, 8]),
    ("labels.foo,name", [0, 2, 8]),
    ("labels.foo==true", [0]),
    ("labels.foo==omg_asdf.asdf-qwer", [8]),
    ("name==bar", [1, 3]),
    ("name!=bar", [0, 2, 4, 5, 6, 7, 8]),
    ("name==bar,labels.bar", [3]),
    ('other=="too complex, yo"', [6]),
    ("other~=[abc]+,name!=foo", [6, 7]),
    ("other~=/[abc]+/,name!=foo", [6, 7]),
    ("other~=/[abc]{1,2}/,name!=foo", [6, 7]),
    ('other~=/[abc]{0,1}"\\//,name!=foo', []),
    ("name==bar,labels.bar==true", [3]),
    ("name==bar,labels.bar==wrong", []),
    ('name==foo,labels."more complex label"', [2]),
    ('labels."more complex label with \\\\ and \\""==present', [4]),
    ('labels."more complex label with \\\\ and \\"".post==present', [5]),
    # several strings are OR
    ("name==bar", [1, 3]),
]


@pytest.mark.parametrize(("text", "expected"), CORPUS_CASES)
def test_containerd_corpus(text: str, expected: list[int]) -> None:
    f = parse_filters(text)
    assert [i for i, a in enumerate(CORPUS) if f.match(a)] == expected


def test_several_strings_are_or() -> None:
    f = parse_filters("name==bar", "labels.foo==true", "other==abc")
    assert [i for i, a in enumerate(CORPUS) if f.match(a)] == [0, 1, 3, 7]


@pytest.mark.parametrize("filters", [(), ("",), ("", ""), ("", "name==nothing")])
def test_no_filter_or_empty_filter_matches_everything(filters: tuple[str, ...]) -> None:
    f = parse_filters(*filters)
    assert all(f.match(a) for a in CORPUS)
    assert f.match(lambda path: ("", False))


# (filter, value the adaptor returns for field "f" or None when absent, expected match)
MATCH_CASES: list[tuple[str, str | None, bool]] = [
    ("f", "x", True),
    ("f", None, False),
    ("f==x", "x", True),
    ("f==x", "y", False),
    ("f==x", None, False),
    ('f==""', None, False),  # == on an absent field is false, even against ""
    ("f!=x", "y", True),
    ("f!=x", "x", False),
    ("f!=x", None, True),  # != matches an absent field ...
    ('f!=""', None, False),  # ... which reads as "", as in containerd
    ('f!=""', "x", True),
    ("f~=^$", None, True),  # ~= matches an absent field as ""
    ("f~=/./", None, False),
    ("f~=x.", "xy", True),
    ("f~=b", "abc", True),  # a search, not a full match
    ("f~=^b", "abc", False),
    ("f~=/^a.c$/", "abc", True),
    ("f~=|a/c|", "a/c", True),
    ("f~=/a\\/c/", "a/c", True),
    ('f~="a,c"', "a,c", True),
    ("f == x", "x", True),  # spaces before operator and value
    ("  f==x", "x", True),
    ("f==x.y-z/w:v@1", "x.y-z/w:v@1", True),  # bare values keep . / : @
    ("f==a=b", "a=b", True),
    ("f=='x'", "'x'", True),  # single quotes are not quotes
    ('f=="\\x41\\102\\u0043\\U00000044"', "ABCD", True),
    ('f=="\\a\\b\\f\\n\\r\\t\\v\\\\\\""', '\a\b\f\n\r\t\v\\"', True),
    ('f=="\\xc3\\xa9"', "é", True),  # \x escapes are bytes, read as UTF-8
    ('f=="\\xff"', "\ufffd", False),  # an invalid byte never equals a real string
    ('f=="\\ud800"', "\ufffd", True),  # Go writes U+FFFD for an escaped surrogate
    ("f==牛", "牛", True),
    ("f~=牛", "大牛", True),
]


@pytest.mark.parametrize(("text", "value", "expected"), MATCH_CASES)
def test_match(text: str, value: str | None, expected: bool) -> None:
    def adaptor(path: Sequence[str]) -> tuple[str, bool]:
        assert list(path) == ["f"]
        return ("", False) if value is None else (value, True)

    assert parse_filters(text).match(adaptor) is expected


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("a", ["a"]),
        ("a.b.c", ["a", "b", "c"]),
        ('labels."containerd.io/gc.root"', ["labels", "containerd.io/gc.root"]),
        ('"quoted first".x', ["quoted first", "x"]),
        ("labels. x", ["labels", "x"]),
        ("l1._2.3", ["l1", "_2", "3"]),
        ('labels."a-b"', ["labels", "a-b"]),
        ('labels."a\\"b"==v', ["labels", 'a"b']),
        ('labels.""', ["labels", ""]),
    ],
)
def test_field_paths(text: str, path: list[str]) -> None:
    seen: list[list[str]] = []

    def adaptor(p: Sequence[str]) -> tuple[str, bool]:
        seen.append(list(p))
        return "v", True

    assert parse_filters(text).match(adaptor)
    assert seen == [path]


# (filter, position, message fragment): containerd's error cases and more.
ERROR_CASES = [
    ("labels.|foo|==omg_asdf.asdf-qwer", 7, "invalid quote encountered"),
    ('labels.?"more complex label"==present', 7, "expected field or quoted"),
    ("name==foo,", 10, "expected field or quoted"),
    ("labels.", 7, "expected field or quoted"),
    ("image~=,id?=?fbaq", 7, "expected value or quoted"),
    ("labels.ns/key==value", 9, "quoted literal not terminated"),
    ("labels.key==/value", 12, "quoted literal not terminated"),
    ('labels."containerd.io\nkey"==value', 7, "quoted literal not terminated"),
    ('labels."\\g"', 7, "illegal escape sequence"),
    ('labels."\\xaz"', 7, "illegal numeric escape sequence"),
    ('labels."\\12"', 7, "illegal numeric escape sequence"),
    ('labels."abc\\', 7, "illegal escape sequence"),
    ("f==/x/", 3, "invalid quote encountered"),  # alternative quotes only after ~=
    ('f=="\\400"', 3, "unquoting failed"),
    ('f=="\\U00110000"', 3, "unquoting failed"),
    ("name=foo", 4, "unsupported operator '='"),
    ("a!==b", 1, "unsupported operator '!=='"),
    ("a~b", 1, "unsupported operator '~'"),
    ("name foo", 5, "expected an operator"),
    ("labels.a-b", 8, "expected an operator"),  # "-" is not a field character
    ("name ,x", 5, "expected an operator"),
    ('name "x"', 5, "expected an operator"),
    ("name==", 6, "expected value or quoted"),
    ("name==  ", 8, "expected value or quoted"),
    ("a==.b", 3, "expected value or quoted"),
    ("a== !b", 4, "expected value or quoted"),
    ("a==!b", 1, "unsupported operator '==!'"),
    ("a~=.", 3, "expected value or quoted"),  # a bare value cannot start with "."
    ("a==b ,c", 4, "unexpected input ' '"),
    ("a==b ", 4, "unexpected input ' '"),
    ('a=="x"y', 6, "unexpected input 'y'"),
    ("a==b\nc", 4, "unexpected input"),
    ("foo\x00bar", 3, "unexpected null"),
    ("a==\x00", 3, "unexpected null"),
    ('a=="\x00"', 3, "unexpected null"),
    ("a==b\ud800", 4, "unexpected input"),
    ("\ud800", 0, "invalid UTF-8"),
    (" ", 1, "expected field or quoted"),
    (",", 0, "expected field or quoted"),
    ("'a'==b", 0, "expected field or quoted"),
    ("a,,b", 2, "expected field or quoted"),
    ("a~=(", 3, "invalid regular expression"),
    ("a~=/[z-a]/", 3, "invalid regular expression"),
    ("a~=x**", 3, "invalid regular expression"),
]


@pytest.mark.parametrize(("text", "pos", "fragment"), ERROR_CASES)
def test_malformed_filters(text: str, pos: int, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        parse_filters(text)
    message = str(excinfo.value)
    assert fragment in message
    assert f"at position {pos} " in message


def test_error_in_any_string_is_reported() -> None:
    with pytest.raises(InvalidArgumentError, match="expected value"):
        parse_filters("a==b", "c==")


def test_error_message_marks_the_position() -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        parse_filters("labels.ns/key==value")
    assert "[labels.ns >|/|< key==value]" in str(excinfo.value)


def _info(labels: Mapping[str, str] | None = None, size: int = 42) -> Info:
    return Info("sha256:" + "ab" * 32, size, NOW, NOW, dict(labels or {}))


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("digest==sha256:" + "ab" * 32, {}, True),
        ("digest~=^sha256:", {}, True),
        ("digest", {}, True),
        ("size==42", {}, True),
        ("size!=42", {}, False),
        ("size~=^4", {}, True),
        ("size", {}, True),
        ("labels", {"a": "1"}, False),  # no key: looks up "", which never exists
        ("labels.a", {"a": "1"}, True),
        ("labels.a", {}, False),
        ("labels.a==1", {"a": "1"}, True),
        ("labels.a.b==1", {"a.b": "1"}, True),  # unquoted parts join with "."
        ('labels."a.b"==1', {"a.b": "1"}, True),
        ('labels."containerd.io/gc.root"', {"containerd.io/gc.root": ""}, True),
        ("labels.a!=2", {}, True),
        ("unknown", {}, False),
        ("unknown!=x", {}, True),
        ("digest.x", {}, True),  # containerd looks only at the first part
    ],
)
def test_info_adaptor(text: str, labels: Mapping[str, str], expected: bool) -> None:
    assert parse_filters(text).match(info_adaptor(_info(labels))) is expected


@pytest.mark.parametrize(
    ("text", "expected_digest", "expected"),
    [
        ("ref==my-ref", "", True),
        ("ref~=^my", "", True),
        ("ref", "", True),
        ("expected", "", False),  # an unset expected counts as absent
        ("expected", "sha256:" + "0" * 64, True),
        ("expected==sha256:" + "0" * 64, "sha256:" + "0" * 64, True),
        ("expected!=sha256:" + "0" * 64, "", True),
        ("offset", "", False),
        ("ref.x", "", True),  # containerd looks only at the first part
    ],
)
def test_status_adaptor(text: str, expected_digest: str, expected: bool) -> None:
    status = Status("my-ref", 3, 10, expected_digest, NOW, NOW)
    assert parse_filters(text).match(status_adaptor(status)) is expected


# Go regexp semantics that Python's re would get wrong without translation.
REGEX_CASES = [
    ("a$", "a\n", False),  # $ is end of text
    ("(?m)a$", "a\nb", True),
    ("^b", "a\nb", False),
    ("(?m)^b", "a\nb", True),
    ("a\\z", "a", True),
    ("\\Aa", "ba", False),
    ("\\d", "٣", False),  # ASCII digits only
    ("\\w", "é", False),
    ("\\s", "\v", False),  # Go's \s has no \v
    ("\\s", "\u00a0", False),
    ("\\S", "\v", True),
    ("\\bé", "é", False),  # ASCII word boundary
    ("\\bx", "éx", True),
    ("x\\B", "xy", True),
    ("[[:alpha:]]", "é", False),
    ("[[:^alpha:]]", "é", True),
    ("[\\d\\s]", " ", True),
    ("[\\D]", "1", False),
    ("[^\\D]", "1", True),
    ("(?i)é", "É", True),
    ("x(?i)y|z", "Z", True),  # flags last to the end of the group, across |
    ("x(?i)y|z", "XY", False),
    ("(?i:a)b", "AB", False),
    ("(?s).", "\n", True),
    (".", "\n", False),
    ("a{,2}", "a{,2}", True),  # not a repetition in Go
    ("a{01}", "a{01}", True),
    ("a{2}", "aa", True),
    ("a{2,}", "aaa", True),
    ("^a{1,2}$", "aaa", False),
    ("\\Qa.b\\E", "a.b", True),
    ("\\Qa.b\\E", "axb", False),
    ("\\Qa.b", "a.b", True),
    ("\\101\\x42\\x{43}\\0", "ABC\x00", True),
    ("[]a]", "]", True),
    ("[a-]", "-", True),
    ("[^]]", "]", False),
    ("\\.", ".", True),
    ("\\_", "_", True),
    ("(?U)a+", "aaa", True),
    ("(?P<x>a)(?<y>b)", "ab", True),  # (?<name> as in Go 1.22 and later
    ("(?)a", "a", True),
    ("^*a", "a", True),
    ("^ba(?i)*$", "b", True),  # a quantifier after (?flags) repeats the item before it
    ("^ba*(?i)+$", "b", True),
    ("^\\Qab\\E*$", "a", True),  # repeats only the last quoted character
    ("^\\Qab\\E*$", "abab", False),
    ("", "", True),
    ("[[:word:]]+", "a_1", True),
    ("[[:a]", "[", True),  # "[:" without a later ":]" is a literal [ in the class
    ("[[:a]", "b", False),
    ("\\p{Greek}+$", "λόγος", True),  # Unicode classes, which the old translator lacked
    ("^\\pL$", "é", True),
    ("^\\PL$", "é", False),
    ("[\\p{Greek}\\d]", "1", True),
    ("(?i)k", "\u212a", True),  # case folding follows Unicode's simple folds: KELVIN SIGN
    ("(?i)\u017f", "S", True),  # LATIN SMALL LETTER LONG S
    ("(?P<n>a)(?P<n>b)", "ab", True),  # Go allows a name twice
    ("^.$", "\udcff", True),  # an undecodable byte reads as one U+FFFD, as Go reads it
    ("^\\x{FFFD}{2}$", "\udce2\udc82", True),
    ("\\Q(?P<é>\\E", "(?P<é>", True),  # quoted text is not syntax
    ("[(]" * 150, "(" * 150, True),  # parentheses in classes do not nest
]


@pytest.mark.parametrize(("pattern", "value", "expected"), REGEX_CASES)
def test_go_regex_semantics(pattern: str, value: str, expected: bool) -> None:
    f = parse_filters(f"f~={quote(pattern, '/')}")
    assert f.match(lambda path: (value, True)) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "(",
        ")",
        "a)",
        "[a",
        "[z-a]",
        "*a",
        "a|*",
        "(*)",
        "(?i)*",
        "a**",
        "a*+",  # possessive
        "a+?+",
        "a{2}{3}",
        "a{1001}",
        "a{3,2}",
        "(?=a)",
        "(?!a)",
        "(?<=a)",
        "(?#c)",
        "(?x)a",
        "(?-)a",
        "(?i-)a",
        "(?P=n)",
        "(?P<>a)",
        "(?P<a-b>a)",
        "\\1",
        "\\8",
        "\\Z",
        "\\e",
        "\\C",
        "\\é",
        "\\p{Greekk}",
        "\\pX",
        "[\\p{Nope}]",
        "(?P<é>a)",  # Go takes only ASCII letters, digits and _ in names; RE2's C++ more
        "[\\C]",
        "\\Q\\E\\C",
        "(" * 101 + ")" * 101,  # deeper than MAX_NESTING
        "[\\b]",
        "[[:foo:]]",
        "\\x4",
        "\\x{110000}",
        "\\",
    ],
)
def test_go_regex_rejects(pattern: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid regular expression"):
        parse_filters(f"f~={quote(pattern, '|')}")


def test_unicode_tables_are_re2s() -> None:
    # Kawi entered Unicode in 15.0: valid for RE2 and Go 1.21+, not for older Go.
    assert parse_filters("f~=" + quote("^\\p{Kawi}$", "/")).match(lambda path: ("\U00011f04", True))


def test_pattern_too_large_for_re2_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="regex budget"):
        parse_filters("f~=" + quote("\\pL{1000}", "/"))


def test_filter_limits() -> None:
    parse_filters(*["a"] * MAX_FILTERS)
    with pytest.raises(InvalidArgumentError, match="limit is 64"):
        parse_filters(*["a"] * (MAX_FILTERS + 1))
    long_value = "x" * (MAX_FILTER_BYTES - len("a=="))
    assert parse_filters("a==" + long_value).match(lambda path: (long_value, True))
    with pytest.raises(InvalidArgumentError, match="bytes long"):
        parse_filters("a==" + long_value + "x")
    with pytest.raises(InvalidArgumentError, match="bytes long"):
        parse_filters("a==" + "é" * (MAX_FILTER_BYTES // 2))
    parse_filters(",".join(["a~=x"] * MAX_REGEXES))
    with pytest.raises(InvalidArgumentError, match="regular expressions; the limit"):
        parse_filters(*["a~=x"] * (MAX_REGEXES + 1))


def test_error_message_of_a_long_filter_is_short() -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        parse_filters("a==" + "x" * 10000 + " y")
    assert len(str(excinfo.value)) < 1000


def test_regex_compiled_once_at_parse_time() -> None:
    f = parse_filters("a~=x", "b~=y,c~=z")
    regexes = [s.regex for alt in f.alternatives for s in alt]
    assert all(isinstance(r, GoRegex) for r in regexes)


def test_quote_rejects_bad_delimiter_and_surrogates() -> None:
    with pytest.raises(InvalidArgumentError):
        quote("x", "'")
    with pytest.raises(InvalidArgumentError):
        quote("\ud800")


# ---- properties -------------------------------------------------------------------------------

# Text that a Python caller can hold, including bytes smuggled by surrogateescape.
any_text = st.text(st.characters(codec="utf-8") | st.sampled_from([chr(0xDC80), chr(0xDCFF)]))
GRAMMAR = st.sampled_from(list("abz09_-.,=!~\"/|\\ \t\n\x00'xuU{}[]()*+?^$é牛"))


@given(any_text)
def test_quote_round_trips_values(value: str) -> None:
    f = parse_filters(f"f=={quote(value)}")
    assert f.match(lambda path: (value, True))
    assert not f.match(lambda path: (value + "x", True))
    assert parse_filters(f"f!={quote(value)}").match(lambda path: (value, True)) is False


@given(any_text, any_text)
def test_quote_round_trips_label_keys(key: str, value: str) -> None:
    f = parse_filters(f"labels.{quote(key)}=={quote(value)}")
    assert f.match(info_adaptor(_info({key: value})))
    assert not f.match(info_adaptor(_info({key + "x": value})))


def _go_literal(text: str) -> str:
    """A Go regexp matching ``text`` literally: escape every ASCII non-alphanumeric."""
    return "".join("\\" + c if c < "\x80" and not c.isalnum() else c for c in text)


@given(st.text(st.characters(codec="utf-8")), st.sampled_from('"/|'), any_text)
def test_quoted_literal_regex_is_a_search(needle: str, delimiter: str, haystack: str) -> None:
    f = parse_filters(f"f~={quote(_go_literal(needle), delimiter)}")
    assert f.match(lambda path: ("<" + needle + ">", True))
    assert f.match(lambda path: (haystack, True)) is (needle in haystack)


@settings(max_examples=300)
@given(st.text(GRAMMAR, max_size=30))
def test_grammar_soup_raises_only_invalid_argument(text: str) -> None:
    try:
        f = parse_filters(text)
    except InvalidArgumentError:
        return
    f.match(lambda path: ("x", True))
    f.match(lambda path: ("", False))


@given(st.text(max_size=40))
def test_any_text_raises_only_invalid_argument(text: str) -> None:
    with contextlib.suppress(InvalidArgumentError):
        parse_filters(text, "f~=" + text)


SELECTORS = [
    "labels.a",
    "labels.a==1",
    "labels.a!=1",
    "labels.b~=^x",
    "labels.b==x",
    'labels."c.d"',
    "size==42",
    "size~=2$",
]
label_sets = st.dictionaries(
    st.sampled_from(["a", "b", "c.d"]), st.sampled_from(["", "1", "x", "xy"]), max_size=3
)


@given(st.sampled_from(SELECTORS), st.sampled_from(SELECTORS), label_sets, st.integers(40, 43))
def test_and_or_algebra(left: str, right: str, labels: dict[str, str], size: int) -> None:
    a = info_adaptor(_info(labels, size))
    lhs, rhs = parse_filters(left).match(a), parse_filters(right).match(a)
    assert parse_filters(f"{left},{right}").match(a) is (lhs and rhs)
    assert parse_filters(left, right).match(a) is (lhs or rhs)
    assert parse_filters(right, left).match(a) is (lhs or rhs)
    assert parse_filters(left, left).match(a) is lhs

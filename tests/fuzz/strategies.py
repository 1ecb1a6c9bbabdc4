"""Hostile values for every kind of input: strings, refs, digests, labels, filters, numbers."""

from __future__ import annotations

from hypothesis import strategies as st

from cargohold.plugin.gen import content_pb2 as pb

from .conftest import SEED_DIGESTS, SEED_REF

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Numbers around every edge an offset, a size or a total can have.
hostile_ints = st.one_of(
    st.sampled_from(
        [
            *(0, 1, -1, 2, 5, 4499, 4500, 4501, 9000, 2**31 - 1, 2**31, 2**32, 2**53 + 1),
            *(2**62, INT64_MAX, INT64_MIN, INT64_MIN + 1, -(2**31)),
        ]
    ),
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-10, 20_000),
)

# Text of every sort a protobuf string can carry (valid UTF-8 only: see the raw tests).
plain_text = st.text(st.characters(codec="utf-8"), max_size=24)
special_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "..",
        "../..",
        "/",
        "//",
        "a/../../b",
        "\n",
        "~deleting",
        "fuzz/x",
        "\u202e",
        "\ufeff",
        "\U0010ffff",
        "%2e%2e",
    ]
)
# Long text is made by repetition (so that a failing example's report stays short):
# 4091 bytes is the longest ref that fits beside the node id "fuzz/".
long_text = st.sampled_from([("r", 4091), ("r", 4092), ("é", 2048), ("x", 70_000)]).map(
    lambda spec: spec[0] * spec[1]
)
any_text = st.one_of(plain_text, special_text, long_text)

# Refs for ingestions the fuzzing may create and break: never the seeded one.
refs = any_text.filter(lambda ref: ref != SEED_REF)

HEX = "0123456789abcdef"
valid_digests = st.one_of(
    st.text(st.sampled_from(HEX), min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    st.text(st.sampled_from(HEX), min_size=128, max_size=128).map(lambda h: "sha512:" + h),
)
malformed_digests = st.one_of(
    st.sampled_from(
        [
            "",
            "sha256:",
            "sha256:" + "A" * 64,
            "sha256:" + "0" * 63,
            "sha256:" + "0" * 65,
            "sha512:" + "0" * 64,
            "sha256:" + "0" * 64 + "\n",
            "SHA256:" + "0" * 64,
            "md5:" + "0" * 32,
            "sha256:../../" + "0" * 58,
            "sha256/" + "0" * 64,
            "blake3:" + "0" * 64,
        ]
    ),
    any_text,
)
# Digests an operation that changes things may target: never a seeded blob's.
target_digests = st.one_of(valid_digests, malformed_digests).filter(lambda d: d not in SEED_DIGESTS)
# Digests a read-only operation may target, seeded ones included.
read_digests = st.one_of(st.sampled_from(sorted(SEED_DIGESTS)), valid_digests, malformed_digests)

label_keys = st.one_of(plain_text, special_text, st.sampled_from([4095, 4096]).map("k".__mul__))
labels = st.dictionaries(label_keys, any_text, max_size=4)

field_paths = st.one_of(
    st.sampled_from(
        [
            *("labels", "labels.", "labels.a", "labels.k", "size", "digest", "", "."),
            *("labels..x", "Labels", "labels.a.b", "created_at", "labels\x00"),
        ]
    ),
    plain_text,
    st.one_of(plain_text, long_text).map(lambda key: "labels." + key),
)
masks = st.lists(field_paths, max_size=4)

FILTER_TOKENS = [
    *"abdlz019_-.,=!~\"/|\\ \t\n'xuU{}[]()*+?^$",
    "labels",
    "labels.",
    "digest",
    "size",
    "ref",
    "expected",
    "==",
    "!=",
    "~=",
    '"',
    "\\x",
    "\\u00e9",
    "\x00",
    "é",
    "\\pL",
    "\\p{Greek}",
    "(?i)",
    "{1001}",
    "{1000}",
    "\\C",
    "(a+)+$",
]


def _repeated(spec: tuple[str, str, int, str]) -> str:
    """``prefix + unit * count + closing * count`` (built here, so reports stay short)."""
    prefix, unit, count, closing = spec
    return prefix + unit * count + closing * count


filter_strings = st.one_of(
    st.lists(st.sampled_from(FILTER_TOKENS), max_size=16).map("".join),
    any_text,
    st.sampled_from(
        [
            "labels.seed==a",
            "labels.seed~=^(a+)+$",
            'labels."containerd.io/gc.root"',
            "size~=^[0-9]{1,3}$",
            "ref~=/\\pL{1000}/",
            "ref~=^seed",
        ]
    ),
    st.sampled_from(
        [
            ("digest~=", "(", 101, ")"),  # nests one deeper than allowed
            ("digest~=", "(", 100, ")"),
            ("labels.x~=", "a", 17_000, ""),  # longer than a filter may be
            ("a~=b", ",a~=b", 40, ""),  # more regexes than one call may hold
        ]
    ).map(_repeated),
)
filter_lists = st.lists(filter_strings, max_size=5)

# Write actions: the three containerd knows and values it does not.
actions = st.one_of(st.sampled_from([pb.STAT, pb.WRITE, pb.COMMIT]), st.integers(-5, 100))
small_data = st.one_of(st.binary(max_size=64), st.sampled_from([0, 70_000]).map(b"x".__mul__))


@st.composite
def write_requests(draw: st.DrawFn) -> pb.WriteContentRequest:
    """One request of a Write stream, any field set to anything."""
    fields: dict[str, object] = {"action": draw(actions)}
    if draw(st.booleans()):
        fields["ref"] = draw(refs)
    for name, strategy in (
        ("total", hostile_ints),
        ("offset", hostile_ints),
        ("expected", st.one_of(valid_digests, malformed_digests)),
        ("data", small_data),
        ("labels", labels),
    ):
        if draw(st.booleans()):
            fields[name] = draw(strategy)
    return pb.WriteContentRequest(**fields)  # type: ignore[arg-type]


@st.composite
def write_streams(draw: st.DrawFn) -> list[pb.WriteContentRequest]:
    """A Write stream: its first request names a ref (or, rarely, not), then anything."""
    first = draw(write_requests())
    if draw(st.integers(0, 9)) > 0:
        first.ref = draw(st.one_of(st.sampled_from(["f/1", "f/2", "f/3"]), refs))
    rest = draw(st.lists(write_requests(), max_size=6))
    return [first, *rest]

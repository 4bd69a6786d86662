"""Prompt readers (txt, csv, jsonl, stdin) and path expansion: bad inputs never stop a scan."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import write
from vgate.core.findings import InputIssue, Record
from vgate.inputs import expand_paths, format_for, iter_inputs, read_stream, text_records
from vgate.inputs.prompts import (
    DEFAULT_COLUMNS,
    MAX_PROMPT_CHARS,
    SUPPRESS_MARKER,
    make_record,
    open_text,
    pick_column,
    printable,
)


def read_bytes(data: bytes, fmt: str, column: str | None = None, field: str | None = None):
    """Everything one reader yields for ``data`` (through a real buffered stream)."""
    raw = io.BufferedReader(io.BytesIO(data))
    return list(read_stream(raw, "f", fmt, column, field))


def records(items) -> list[Record]:
    return [x for x in items if isinstance(x, Record)]


def issues(items) -> list[InputIssue]:
    return [x for x in items if isinstance(x, InputIssue)]


# --- txt ---------------------------------------------------------------------------------------


def test_txt_skips_comments_and_blank_lines_and_keeps_physical_line_numbers() -> None:
    data = b"# header comment\n\na cat on a skateboard\n   \n  # indented comment\n  a dog  \n"
    items = read_bytes(data, "txt")
    assert [(r.text, r.line) for r in records(items)] == [
        ("a cat on a skateboard", 3),
        ("a dog", 6),
    ]
    assert not issues(items)


def test_txt_handles_crlf_and_utf8_bom() -> None:
    data = b"\xef\xbb\xbffirst prompt\r\nsecond prompt\r\n"
    got = [(r.text, r.line) for r in records(read_bytes(data, "txt"))]
    assert got == [("first prompt", 1), ("second prompt", 2)]


def test_txt_inline_suppression_marker_is_stripped_and_flagged() -> None:
    data = b"blood everywhere  # vgate: allow\nblood again\nsome #vgate:ALLOW\n"
    got = [(r.text, r.suppressed) for r in records(read_bytes(data, "txt"))]
    assert got == [("blood everywhere", True), ("blood again", False), ("some", True)]


def test_txt_marker_must_end_the_line() -> None:
    (rec,) = records(read_bytes(b"blood # vgate: allow this one\n", "txt"))
    assert rec.suppressed is False
    assert rec.text == "blood # vgate: allow this one"


def test_non_utf8_line_is_reported_with_its_number_and_other_lines_are_read() -> None:
    data = b"good one\nbad \xff\xfe line\ngood two\n"
    items = read_bytes(data, "txt")
    assert [(r.text, r.line) for r in records(items)] == [("good one", 1), ("good two", 3)]
    (issue,) = issues(items)
    assert issue.line == 2
    assert "not valid UTF-8" in issue.message and "0xff" in issue.message
    assert str(issue) == f"f:2: {issue.message}"


def test_one_megabyte_line_is_truncated_for_the_detectors_and_keeps_its_location() -> None:
    long = "a" * (1 << 20)
    data = f"short\n{long}\nafter\n".encode()
    recs = records(read_bytes(data, "txt"))
    assert [r.line for r in recs] == [1, 2, 3]
    big = recs[1]
    assert big.truncated and len(big.text) == MAX_PROMPT_CHARS
    assert not recs[0].truncated and not recs[2].truncated


def test_make_record_truncates_only_over_the_limit() -> None:
    assert not make_record("x" * MAX_PROMPT_CHARS, "s", 1).truncated
    rec = make_record("x" * (MAX_PROMPT_CHARS + 1), "s", 7)
    assert rec.truncated and len(rec.text) == MAX_PROMPT_CHARS and rec.line == 7


@pytest.mark.parametrize("fmt", ["txt", "csv", "jsonl"])
def test_empty_input_is_an_issue(fmt: str) -> None:
    (issue,) = read_bytes(b"", fmt)
    assert isinstance(issue, InputIssue) and issue.message == "empty file"


@pytest.mark.parametrize("fmt", ["txt", "csv", "jsonl"])
def test_binary_input_is_refused_as_a_whole(fmt: str) -> None:
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    (issue,) = read_bytes(data, fmt)
    assert isinstance(issue, InputIssue) and "binary file" in issue.message


def test_utf16_is_refused_with_a_hint() -> None:
    (issue,) = read_bytes("a cat\n".encode("utf-16"), "txt")
    assert isinstance(issue, InputIssue) and "UTF-16" in issue.message


def test_open_text_works_on_streams_without_peek() -> None:
    """stdin replaced by a BytesIO (embedding, test runners) has no ``peek``."""
    stream = open_text(io.BytesIO(b"a cat\n"), "<stdin>")
    assert not isinstance(stream, InputIssue)
    assert stream.read() == "a cat\n"


# --- csv ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("id,caption,text,prompt", "prompt"),
        ("id,caption,text", "text"),
        ("id,caption", "caption"),
        ("ID, Prompt ", " Prompt "),
    ],
)
def test_default_column_order_is_prompt_text_caption(header: str, expected: str) -> None:
    assert DEFAULT_COLUMNS == ("prompt", "text", "caption")
    assert pick_column(header.split(","), None) == expected


def test_csv_reads_the_default_column() -> None:
    data = b"id,caption,text\n1,a caption,the text\n2,other caption,more text\n"
    got = [(r.text, r.line) for r in records(read_bytes(data, "csv"))]
    assert got == [("the text", 2), ("more text", 3)]


def test_csv_without_a_prompt_column_names_the_columns() -> None:
    (issue,) = read_bytes(b"id,description\n1,blood\n", "csv")
    assert isinstance(issue, InputIssue)
    assert "no prompt, text or caption column" in issue.message
    assert "id, description" in issue.message and "--column" in issue.message


def test_csv_column_option_picks_a_column_case_insensitively() -> None:
    data = b"id,Description,prompt\n1,blood on the floor,a cat\n"
    (rec,) = records(read_bytes(data, "csv", column="description"))
    assert rec.text == "blood on the floor"
    (issue,) = read_bytes(data, "csv", column="missing")
    assert isinstance(issue, InputIssue) and "no column 'missing'" in issue.message


def test_csv_row_line_numbers_with_multiline_quoted_cells() -> None:
    data = (
        b'id,prompt\n1,"first line\nsecond line\nthird line"\n\n2,single\n'
        b'3,"a ""quoted"" word\r\nacross CRLF"\n4,last\n'
    )
    got = [(r.text, r.line) for r in records(read_bytes(data, "csv"))]
    assert got == [
        ("first line\nsecond line\nthird line", 2),
        ("single", 6),
        ('a "quoted" word\r\nacross CRLF', 7),
        ("last", 9),
    ]


def test_csv_short_row_and_undecodable_cell_are_issues_and_other_rows_are_read() -> None:
    data = b"id,note,prompt\n1\n2,x,bad \xff cell\n3,y,fine\n"
    items = read_bytes(data, "csv")
    assert [(r.text, r.line) for r in records(items)] == [("fine", 4)]
    assert [(i.line, i.message.split(" ")[0]) for i in issues(items)] == [(2, "row"), (3, "not")]


def test_csv_header_only_and_undecodable_header_never_break_the_report() -> None:
    assert read_bytes(b"id,prompt\n", "csv") == []
    (issue,) = read_bytes(b"id,bad\xffname\n1,x\n", "csv")
    assert isinstance(issue, InputIssue)
    issue.message.encode("utf-8")  # a report can hold it
    assert "\\udcff" in issue.message


# --- jsonl -------------------------------------------------------------------------------------


def test_jsonl_malformed_line_names_the_line_and_the_rest_is_read() -> None:
    data = b'{"prompt": "one"}\n{"prompt": "two"\n\n[1, 2]\n{"text": "three"}\n{"x": 1}\n'
    items = read_bytes(data, "jsonl")
    assert [(r.text, r.line) for r in records(items)] == [("one", 1), ("three", 5)]
    got = [(i.line, i.message) for i in issues(items)]
    assert got[0][0] == 2 and got[0][1].startswith("not valid JSON")
    assert got[1] == (4, "expected a JSON object")
    assert got[2][0] == 6 and "no prompt, text or caption field" in got[2][1]


def test_jsonl_error_message_names_the_column() -> None:
    (issue,) = read_bytes(b'{"prompt": "tab\there"}\n', "jsonl")
    assert isinstance(issue, InputIssue)
    assert issue.message == "not valid JSON (Invalid control character at column 16)"


def test_jsonl_field_option_and_non_string_values() -> None:
    data = b'{"prompt": "p", "desc": "d"}\n{"desc": 3}\n'
    items = read_bytes(data, "jsonl", field="desc")
    assert [(r.text, r.line) for r in records(items)] == [("d", 1)]
    (issue,) = issues(items)
    assert issue.line == 2 and "not a string" in issue.message


@pytest.mark.parametrize(
    "line",
    [
        b'{"prompt": "x", "n": ' + b"1" * 5000 + b"}",  # int digit limit: ValueError
        b"[" * 100_000,  # RecursionError inside json
        b'{"prompt": "blood \\ud800"}',  # lone surrogate: cannot be written as UTF-8
    ],
    ids=["huge-int", "deep-nesting", "lone-surrogate"],
)
def test_jsonl_hostile_lines_are_issues_not_crashes(line: bytes) -> None:
    items = read_bytes(line + b'\n{"prompt": "ok"}\n', "jsonl")
    assert [(r.text, r.line) for r in records(items)] == [("ok", 2)]
    (issue,) = issues(items)
    assert issue.line == 1
    issue.message.encode("utf-8")


# --- paths -------------------------------------------------------------------------------------


def test_missing_path_is_an_issue_and_other_paths_are_read(tmp_path: Path) -> None:
    good = write(tmp_path / "a.txt", "a cat\n")
    items = list(iter_inputs([str(tmp_path / "nope.txt"), str(good)]))
    assert isinstance(items[0], InputIssue) and "no such file" in items[0].message
    assert [r.text for r in records(items)] == ["a cat"]


def test_directory_without_prompt_files_is_an_issue(tmp_path: Path) -> None:
    write(tmp_path / "d" / "image.png", b"\x89PNG")
    write(tmp_path / "d" / ".hidden.txt", "a cat\n")
    (issue,) = list(expand_paths([str(tmp_path / "d")]))
    assert isinstance(issue, InputIssue) and "no prompt files" in issue.message


def test_directories_are_walked_recursively_sorted_and_hidden_entries_skipped(
    tmp_path: Path,
) -> None:
    root = tmp_path / ".ci-prompts"  # a hidden directory named on the command line is read
    for rel in ["b.txt", "a/z.jsonl", "a/b.csv", "c.ndjson", "notes.md", ".git/x.txt"]:
        write(root / rel, "x\n")
    write(root / "a" / ".secret.txt", "x\n")
    write(root / ".hidden" / "deep" / "y.txt", "x\n")
    names = [Path(item[0]).relative_to(root).as_posix() for item in expand_paths([str(root)])]
    assert names == ["a/b.csv", "a/z.jsonl", "b.txt", "c.ndjson"]


@pytest.mark.parametrize(
    ("name", "requested", "expected"),
    [
        ("p.CSV", "auto", "csv"),
        ("p.ndjson", "auto", "jsonl"),
        ("p.prompts", "auto", "txt"),
        ("p.csv", "txt", "txt"),
    ],
)
def test_format_for(name: str, requested: str, expected: str) -> None:
    assert format_for(Path(name), requested) == expected


def test_non_utf8_file_names_are_printable_in_reports(tmp_path: Path) -> None:
    name = str(tmp_path).encode() + b"/bad\xffname.txt"
    Path(name.decode("utf-8", "surrogateescape")).write_bytes(b"a cat\n")
    (rec,) = records(iter_inputs([str(tmp_path)]))
    rec.source.encode("utf-8")
    assert rec.source.endswith("bad\\udcffname.txt") and rec.text == "a cat"


def test_text_records() -> None:
    assert [(r.text, r.line) for r in text_records(["one"])] == [("one", 0)]
    got = list(text_records(["one", "two \udcff"]))
    assert isinstance(got[0], Record) and got[0].line == 1
    assert isinstance(got[1], InputIssue) and got[1].line == 2


def test_printable_leaves_valid_text_alone() -> None:
    assert printable("naïve ☃") == "naïve ☃"
    assert printable("a\udcffb") == "a\\udcffb"


# --- properties --------------------------------------------------------------------------------

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def physical_lines(data: bytes) -> int:
    """Lines as text readers (and SARIF) count them: CR, LF and CRLF end a line."""
    return len(_LINE_BREAK.split(data)) - (1 if data.endswith((b"\n", b"\r")) else 0)


# Bytes that look like the formats (structure characters, quotes, separators, high bytes, NUL).
_TOKENS = st.sampled_from(
    [b"\n", b"\r\n", b"\r", b",", b'"', b"{", b"}", b":", b"[", b"]", b"\\u", b"d800", b"#",
     b" # vgate: allow", b"prompt", b"text", b"caption", b"\xff", b"\xc3\xa9", b"\x00", b"\t",
     b"blood", b" ", b"\xef\xbb\xbf"]
)  # fmt: skip
_BYTES = st.one_of(st.binary(max_size=300), st.lists(_TOKENS, max_size=60).map(b"".join))


@settings(max_examples=150, deadline=None)
@given(data=_BYTES, fmt=st.sampled_from(["txt", "csv", "jsonl"]))
def test_readers_never_raise_and_lines_stay_within_the_file(data: bytes, fmt: str) -> None:
    items = read_bytes(data, fmt)
    total = physical_lines(data)
    for item in items:
        assert isinstance(item, Record | InputIssue)
        if isinstance(item, Record):
            assert 1 <= item.line <= total
            assert item.text and item.text == item.text.strip()
            item.text.encode("utf-8")  # always writable to a report
        elif item.line is not None:
            assert 1 <= item.line <= total
        str(item).encode("utf-8")


_JSON_VALUE = st.text(
    st.characters(codec=None, exclude_categories=()), max_size=30
)  # includes lone surrogates


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_JSON_VALUE, min_size=1, max_size=10))
def test_jsonl_records_are_always_valid_text(values: list[str]) -> None:
    data = "".join(json.dumps({"prompt": v}) + "\n" for v in values).encode("ascii")
    items = read_bytes(data, "jsonl")
    for item in items:
        if isinstance(item, Record):
            item.text.encode("utf-8")
    readable = [v for v in values if v.strip() and not re.search("[\ud800-\udfff]", v)]
    assert [r.text for r in records(items)] == [v.strip() for v in readable]


_PROMPT = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\ufeff"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() and not s.strip().startswith("#") and not SUPPRESS_MARKER.search(s))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    lines=st.lists(
        st.one_of(_PROMPT, st.just(""), st.just("   "), st.just("# a comment")), max_size=20
    ),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_txt_round_trip(lines: list[str], newline: str) -> None:
    data = newline.join(lines).encode("utf-8")
    if not data:
        return
    got = records(read_bytes(data, "txt"))
    expected = [
        (line.strip(), n)
        for n, line in enumerate(lines, start=1)
        if line.strip() and not line.strip().startswith("#")
    ]
    assert [(r.text, r.line) for r in got] == expected

"""Output shaping: pure functions, notes tested exactly."""

from __future__ import annotations

from agentkit.runtime.output import (
    BINARY_NOTE,
    EMPTY_FAILED,
    EMPTY_OK,
    EMPTY_TIMED_OUT,
    TRUNCATION_NOTE,
    OutputBuffer,
    clean_text,
    cut_middle,
    looks_binary,
    shape_output,
)


def test_notes_are_fixed_text() -> None:
    assert EMPTY_OK == "(command ran successfully and produced no output)"
    assert (
        EMPTY_FAILED.format(exit_code=3)
        == "(command failed with exit code 3 and produced no output)"
    )
    assert BINARY_NOTE.format(size=5).startswith("[binary output: 5 bytes not shown;")
    assert TRUNCATION_NOTE.format(cut=10).startswith("[... 10 characters cut from the middle")


def test_empty_output_messages() -> None:
    assert shape_output(b"", 0).text == EMPTY_OK
    assert shape_output(b"  \n", 0).text == EMPTY_OK
    assert shape_output(b"", 2).text == EMPTY_FAILED.format(exit_code=2)
    assert shape_output(b"", None).text == EMPTY_TIMED_OUT


def test_text_passes_through() -> None:
    shaped = shape_output("héllo\n".encode(), 0)
    assert shaped.text == "héllo\n" and not shaped.truncated


def test_cut_in_the_middle_with_exact_note() -> None:
    text = "".join(f"line {i}\n" for i in range(10_000))
    shaped = shape_output(text.encode(), 0, limit=1000)
    assert shaped.truncated
    note = TRUNCATION_NOTE.format(cut=len(text) - 1000)
    assert shaped.text == f"{text[:500]}\n{note}\n{text[-500:]}"


def test_cut_counts_bytes_dropped_upstream() -> None:
    shaped = cut_middle("a" * 100, limit=50, extra_cut=1000)
    assert TRUNCATION_NOTE.format(cut=1050) in shaped.text


def test_binary_is_replaced_by_note() -> None:
    data = bytes(range(256)) * 4
    assert looks_binary(data)
    assert shape_output(data, 0).text == BINARY_NOTE.format(size=len(data))
    assert shape_output(b"abc\x00def", 0).text == BINARY_NOTE.format(size=7)


def test_mostly_text_with_a_few_bad_bytes_is_text() -> None:
    data = b"ok line\n" * 50 + b"\xff\xfe latin-1 caf\xe9\n"
    assert not looks_binary(data)
    text = shape_output(data, 0).text
    assert "ok line" in text and "\ufffd" in text


def test_control_chars_escaped_and_ansi_removed() -> None:
    assert (
        clean_text("\x1b[31mred\x1b[0m bell\x07 tab\tok\r\nnext") == "red bell\\x07 tab\tok\nnext"
    )


def test_output_buffer_keeps_head_and_tail() -> None:
    buf = OutputBuffer(cap=10)
    for i in range(100):
        buf.feed(bytes([65 + i % 26]) * 3)
    value = buf.getvalue()
    assert len(value) <= 30 and value.startswith(b"AAABBBCCCD")
    assert buf.dropped + len(value) == 300

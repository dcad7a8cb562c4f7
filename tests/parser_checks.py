"""Assertions shared by the hand-computed parser tests."""

from __future__ import annotations

FIELDS = ("left", "top", "width", "height", "confidence")


def objects(outcome) -> list[tuple]:
    """(class, left, top, width, height, confidence) per object, rounded to 1e-4, in output order."""
    return [(int(o["class_id"]), *(round(float(o[f]), 4) for f in FIELDS)) for o in outcome.objects]


def run_both(parser, case):
    """The library's outcome, after checking that the reference agrees exactly (same objects, same order).

    ``parser`` is the (architecture, params, library) triple of the open_parser fixture.
    """
    architecture, params, library = parser
    got = library.parse(case)
    want = architecture.reference(case, params)
    assert got.accepted == want.accepted
    assert objects(got) == objects(want)
    return got

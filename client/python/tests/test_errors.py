"""How a FathomError reads: str(error) names the code once and each
violation once, as the TypeScript client's message does."""

from __future__ import annotations

import grpc

from fathom import FathomError
from fathom.errors import FieldViolation


def test_a_refusal_names_its_code_once() -> None:
    error = FathomError(grpc.StatusCode.NOT_FOUND, 'collection "nope" does not exist')
    assert str(error) == 'NOT_FOUND: collection "nope" does not exist'


def test_violations_the_message_does_not_list_are_added_one_a_line() -> None:
    error = FathomError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid request",
        [FieldViolation("dimension", "must be 1..=16000")],
    )
    assert str(error) == "INVALID_ARGUMENT: invalid request\n  dimension: must be 1..=16000"


def test_violations_the_message_already_lists_are_not_repeated() -> None:
    violations = [
        FieldViolation("name", "collection names use lower-case ASCII letters"),
        FieldViolation("dimension", "dimension is 0; it must be 1..=16000"),
    ]
    message = "; ".join(f"{v.field}: {v.description}" for v in violations)
    error = FathomError(grpc.StatusCode.INVALID_ARGUMENT, message, violations)
    assert str(error) == f"INVALID_ARGUMENT: {message}"
    assert error.violations == violations

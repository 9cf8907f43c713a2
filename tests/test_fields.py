"""The form's fields, declared once (shared/fields.py): what the form shows is what execute checks."""

from __future__ import annotations

import pytest

from shared import fields
from shared.errors import FormError
from tests.support.handlers import FORM_FIELDS

EVERYTHING = fields.Context(buckets=("acme-exports", "acme-finance"), allow_overwrite=True)


def test_the_form_shows_the_declared_fields_in_order() -> None:
    assert [f.name for f in fields.form(fields.Context())] == FORM_FIELDS
    assert [f.name for f in fields.form(EVERYTHING)] == [*FORM_FIELDS, "overwrite"]
    bucket = fields.form(EVERYTHING)[0]
    assert (bucket.type, bucket.default) == ("select", "acme-exports")
    assert [o.name for o in bucket.options] == list(EVERYTHING.buckets)


def test_every_shown_field_is_checked_by_execute_under_its_own_name() -> None:
    wrong = {"bucket": "elsewhere", "subject_name": "--", "email": "nope", "output": "pdf",
             "filename": "!!", "overwrite": "maybe"}  # fmt: skip
    with pytest.raises(FormError) as caught:
        fields.checked(wrong, EVERYTHING)
    assert set(caught.value.errors) == {f.name for f in fields.form(EVERYTHING)}


def test_values_come_back_stripped_and_a_hidden_choice_is_still_refused() -> None:
    good = {"bucket": " acme-finance ", "subject_name": " weekly ", "output": "original"}
    values = fields.checked(good, EVERYTHING)
    assert values == {"bucket": "acme-finance", "subject_name": "weekly", "email": "",
                      "output": "original", "filename": "", "overwrite": ""}  # fmt: skip
    with pytest.raises(FormError) as caught:
        fields.checked({**good, "overwrite": "yes"}, fields.Context(EVERYTHING.buckets))
    assert "ALLOW_OVERWRITE=1" in caught.value.errors["overwrite"]


def test_the_bucket_rule_says_what_it_accepts() -> None:
    """The words of a refusal state the whole rule: a dotted name it accepts is not refused by
    its own words (exports.acme.com is 16 characters with dots)."""
    from shared.buckets import RULE, bucket_name_problem

    assert bucket_name_problem("exports.acme.com") is None
    assert "dots" in RULE and "222" in RULE and "'.'" in RULE
    assert bucket_name_problem("Exports") == f"is not a valid bucket name ({RULE})"

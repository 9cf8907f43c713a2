"""Object names: a user's file name with {date}, {time} and {timestamp} tokens, kept inside the
subject's folder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from action_execute import naming

NOW = datetime(2026, 11, 30, 7, 0, 5, tzinfo=UTC)
TEMPLATE = "{subject}/{date}/{title}_{timestamp}.xlsx"


def name(title: str, *, tokens: bool = True, template: str = TEMPLATE) -> str:
    return naming.object_name(
        template,
        subject="finance",
        title=title,
        plan_id=None,
        webhook_id=None,
        now=NOW,
        tokens=tokens,
    )


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("board-pack-{date}", "finance/2026-11-30/board-pack-2026-11-30_20261130T070005Z.xlsx"),
        ("run {time}", "finance/2026-11-30/run-070005_20261130T070005Z.xlsx"),
        ("{timestamp}.xlsx", "finance/2026-11-30/20261130T070005Z_20261130T070005Z.xlsx"),
        ("{date}/../../etc", "finance/2026-11-30/2026-11-30-..-..-etc_20261130T070005Z.xlsx"),
        ("{nope} {DATE}", "finance/2026-11-30/nope-DATE_20261130T070005Z.xlsx"),
    ],
)
def test_file_name_tokens_are_filled_and_stay_in_the_folder(filename: str, expected: str) -> None:
    assert name(filename) == expected
    assert name(filename).count("/") == 2  # no segment added, none climbed out of


def test_a_title_is_not_a_template() -> None:
    """Only the user's file name takes tokens; a dashboard titled with braces keeps its words."""
    assert (
        name("Sales {date}", tokens=False) == "finance/2026-11-30/Sales-date_20261130T070005Z.xlsx"
    )


def test_with_the_fixed_overwrite_path() -> None:
    assert name("pack-{date}", template="{subject}/{title}.xlsx") == "finance/pack-2026-11-30.xlsx"

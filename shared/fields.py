"""The form's fields, each declared once: what action_form shows and what action_execute checks.

A field is its name, label, description, type, options, whether it is required, when the form
shows it, and its check. action_form renders `form(...)`; action_execute's order reads `checked(...)`,
which strips every value, runs every field's check, and reports every wrong field at once, keyed
by its name, as Looker shows them beside the fields. Adding a field is one entry in FIELDS plus the
code that uses its value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from shared.buckets import bucket_name_problem
from shared.errors import FormError
from shared.looker import FormField, FormOption
from shared.mail import domain_allowed

MAX_SUBJECT = 100
MAX_FILENAME = 200
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}$")


@dataclass(frozen=True)
class Context:
    """What the fields depend on: the buckets this user may choose (empty: any, typed in), and
    whether the admin lets exports replace objects (ALLOW_OVERWRITE)."""

    buckets: tuple[str, ...] = ()
    allow_overwrite: bool = False
    email_domains: tuple[str, ...] = ()  # SMTP_ALLOWED_DOMAINS (empty: any)


Check = Callable[[str, Context], str | None]


@dataclass(frozen=True)
class Field:
    shape: FormField  # as the form shows it
    check: Check  # a problem with a (stripped) value, for the Looker user; None when good
    shown: Callable[[Context], bool] = lambda _: True
    adapted: Callable[[FormField, Context], FormField] = lambda field, _: field

    @property
    def name(self) -> str:
        return self.shape.name

    def form(self, context: Context) -> FormField:
        return self.adapted(self.shape, context)


def _choice(options: tuple[FormOption, ...]) -> Check:
    names = tuple(o.name for o in options)

    def check(value: str, _: Context) -> str | None:
        if value and value not in names:
            return f"'{value[:40]}' is not one of {', '.join(names)}"
        return None

    return check


def _bucket(value: str, context: Context) -> str | None:
    if not value:
        return "Choose the bucket to save the file in"
    problem = bucket_name_problem(value)
    if problem:
        return f"'{value[:80]}' {problem}"
    if context.buckets and value not in context.buckets:
        return f"Bucket '{value}' is not on the allowed list ({', '.join(context.buckets)})"
    return None


def _bucket_choices(field: FormField, context: Context) -> FormField:
    if not context.buckets:
        return field
    return replace(
        field,
        description="The Cloud Storage bucket the file is saved in.",
        type="select",
        options=tuple(FormOption(b, b) for b in context.buckets),
        default=context.buckets[0],
    )


def _subject(value: str, _: Context) -> str | None:
    if not value:
        return "Give the export a subject name; it names the folder"
    if len(value) > MAX_SUBJECT:
        return f"The subject name is {len(value)} characters long; keep it to {MAX_SUBJECT} at most"
    if not any(c.isalnum() for c in value):
        return "The subject name needs at least one letter or digit"
    return None


def _email(value: str, context: Context) -> str | None:
    if value and (len(value) > 254 or not _EMAIL.match(value)):
        return f"'{value[:80]}' is not an e-mail address"
    if value and not domain_allowed(value, context.email_domains):
        return (f"E-mail goes only to addresses at {', '.join(context.email_domains)} "
                "(the admin's SMTP_ALLOWED_DOMAINS)")  # fmt: skip
    return None


def _email_domains(field: FormField, context: Context) -> FormField:
    if not context.email_domains:
        return field
    at = ", ".join(context.email_domains)
    return replace(field, description=f"{field.description} Only addresses at {at}.")


def _filename(value: str, _: Context) -> str | None:
    if len(value) > MAX_FILENAME:
        return f"The file name is {len(value)} characters long; keep it to {MAX_FILENAME} at most"
    if value and not any(c.isalnum() for c in value):
        return "The file name needs at least one letter or digit"
    return None


# What is stored (`output`), and whether an existing object is replaced (`overwrite`).
OUTPUTS = (
    FormOption("xlsx", "Excel workbook, a sheet per tile"),
    FormOption("original", "The file as Looker sent it: .csv for a Look, .zip for a dashboard"),
)
OVERWRITES = (
    FormOption("no", "No: a new object each time (a unique name)"),
    FormOption("yes", "Yes: replace the object at the same name"),
)


def _overwrite(value: str, context: Context) -> str | None:
    if value == "yes" and not context.allow_overwrite:
        return (
            "Replacing objects is not enabled for this action: an admin turns it on with the "
            "setting ALLOW_OVERWRITE=1 (deploy's --allow-overwrite)"
        )
    return _choice(OVERWRITES)(value, context)


FIELDS = (
    Field(
        FormField("bucket", "Bucket", "The Cloud Storage bucket the file is saved in (just the "
                  "name, no gs://).", required=True),
        _bucket,
        adapted=_bucket_choices,
    ),
    Field(
        FormField("subject_name", "Subject name", "Names the folder the file goes in, e.g. "
                  "weekly-sales.", required=True),
        _subject,
    ),
    Field(
        FormField("email", "E-mail", "Who to tell when the file is ready (passed on with the "
                  "announcement)."),
        _email,
        adapted=_email_domains,
    ),
    Field(
        FormField("output", "Save as", "An Excel workbook, or the data exactly as Looker sent it.",
                  type="select", options=OUTPUTS, default=OUTPUTS[0].name),
        _choice(OUTPUTS),
    ),
    Field(
        FormField("filename", "File name", "Optional: replaces the dashboard's or Look's title "
                  "in the object name (the extension is added for you)."),
        _filename,
    ),
    Field(
        FormField("overwrite", "Overwrite", "Yes: replace the object of the same name (for jobs "
                  "that read a fixed path). No: a new object every time.", type="select",
                  options=OVERWRITES, default=OVERWRITES[0].name),
        _overwrite,
        shown=lambda context: context.allow_overwrite,
    ),
)  # fmt: skip


def form(context: Context) -> list[FormField]:
    """The fields the form shows, in order."""
    return [field.form(context) for field in FIELDS if field.shown(context)]


def checked(params: Mapping[str, str], context: Context) -> dict[str, str]:
    """Every field's value, stripped ('' when not sent); FormError naming every wrong field."""
    values = {field.name: params.get(field.name, "").strip() for field in FIELDS}
    problems = {field.name: field.check(values[field.name], context) for field in FIELDS}
    errors = {name: problem for name, problem in problems.items() if problem}
    if errors:
        raise FormError(errors)
    return values

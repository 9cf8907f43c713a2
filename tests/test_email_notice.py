"""The optional e-mail notice, against a real SMTP server (aiosmtpd on 127.0.0.1, in a thread).

What a user checks: the mail arrives at the form's address from the configured sender, says where
the workbook is and what it holds, carries no file; STARTTLS and login work; and when mail fails,
the export is still stored and announced, Looker's message says the e-mail failed, and no log line
holds the password.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localdev.lifecycle import free_port
from shared import logs, reader, settings
from shared.settings import ExecuteSettings
from tests.support.world import Deployment, execute, only_object, push_body
from tests.test_settings import GOOD, SecretManagerDouble

SENDER = "Looker exports <exports@acme.example>"
USER = "mailer"
PASSWORD = "smtp-pass-7Yq2x9Lk"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


@dataclass
class Inbox:
    """aiosmtpd's handler: keeps what arrived and how (TLS? logged in as whom?)."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=message_from_bytes(content, policy=policy.default),  # type: ignore[arg-type]
                tls=session.ssl is not None,
                login=login,
            )
        )
        return "250 OK"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made for this run: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test SMTP relay")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@contextmanager
def smtp_server(**options: Any) -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def plain_relay(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A relay without TLS or login (an internal one), configured for the function."""
    with smtp_server() as (port, inbox):
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(port))
        monkeypatch.setenv("SMTP_FROM", SENDER)
        monkeypatch.setenv("SMTP_STARTTLS", "0")
        yield inbox


@pytest.fixture
def tls_relay(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> Iterator[Inbox]:
    """A submission server as providers run them: STARTTLS required, login required after it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with smtp_server(
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    ) as (port, inbox):
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(port))
        monkeypatch.setenv("SMTP_FROM", SENDER)
        monkeypatch.setenv("SMTP_USER", USER)
        monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
        monkeypatch.setenv("SMTP_CA_FILE", str(certificate[0]))
        yield inbox


def summary(world: Deployment, name: str) -> str:
    return f"gs://{world.bucket}/{name} (3 sheets, 5 rows)"


def log_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


class TestDelivered:
    def test_plain_relay_gets_the_notice(self, world: Deployment, plain_relay: Inbox) -> None:
        status, result = execute(push_body(world))
        assert status == 200 and result["success"] is True, result
        name = only_object(world)
        assert result["message"] == summary(world, name)  # nothing added when the mail went out
        (mail,) = plain_relay.received
        assert mail.rcpt_tos == ["ana@acme.com"]
        assert mail.mail_from == "exports@acme.example"
        message = mail.message
        assert message["To"] == "ana@acme.com"
        assert message["From"] == SENDER
        assert message["Subject"] == "Looker export ready: Weekly Sales"
        # Plain text, one part: no attachment of any kind.
        assert not message.is_multipart()
        assert message.get_content_type() == "text/plain"
        assert message.get_content_disposition() is None
        assert list(message.iter_attachments()) == []
        body = message.get_content()
        assert f"gs://{world.bucket}/{name}" in body
        assert "Revenue by Region: 3 rows" in body
        assert "Top Customers: 2 rows" in body
        assert "Empty Tile: 0 rows" in body
        assert "3 worksheets, 5 rows in all" in body
        assert '"Weekly Sales"' in body
        assert "https://acme.cloud.looker.com/dashboards/42?Region=EMEA" in body
        assert "PK\x03\x04" not in body  # no zip (xlsx) bytes inlined either
        # The export itself is untouched: stored and announced.
        assert len(world.messages()) == 1

    def test_starttls_and_login(self, world: Deployment, tls_relay: Inbox) -> None:
        status, result = execute(push_body(world))
        assert status == 200 and result["success"] is True, result
        assert result["message"] == summary(world, only_object(world))
        (mail,) = tls_relay.received
        assert mail.tls is True
        assert mail.login == USER
        assert mail.message["To"] == "ana@acme.com"

    def test_no_email_in_the_form_means_no_mail(
        self, world: Deployment, plain_relay: Inbox
    ) -> None:
        body = push_body(world)
        del body["form_params"]["email"]
        status, result = execute(body)
        assert status == 200 and result["message"] == summary(world, only_object(world))
        assert plain_relay.received == []


class TestFailedMailDoesNotFailTheExport:
    def assert_stored_announced_and_reported(
        self, world: Deployment, result: dict[str, Any], out: str, reason: str
    ) -> dict[str, Any]:
        name = only_object(world)
        assert result["success"] is True
        assert result["message"].startswith(
            f"{summary(world, name)}; the e-mail to ana@acme.com failed: "
        ), result
        assert reason in result["message"]
        assert len(world.messages()) == 1
        assert PASSWORD not in out and PASSWORD not in json.dumps(result)
        (warning,) = [line for line in log_lines(out) if line.get("stage") == "email"]
        assert warning["severity"] == "WARNING"
        assert reason in warning["message"]
        return warning

    def test_server_down(
        self,
        world: Deployment,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        certificate: tuple[Path, Path],
    ) -> None:
        port = free_port()  # nothing listens there
        for name, value in {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_FROM": SENDER,
            "SMTP_USER": USER,
            "SMTP_PASSWORD": PASSWORD,
        }.items():
            monkeypatch.setenv(name, value)
        status, result = execute(push_body(world))
        assert status == 200
        warning = self.assert_stored_announced_and_reported(
            world, result, capsys.readouterr().out, f"could not reach 127.0.0.1:{port}"
        )
        assert warning["to"] == "ana@acme.com"
        assert warning["error"] == "ConnectionRefusedError"

    def test_wrong_password(
        self,
        world: Deployment,
        tls_relay: Inbox,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("SMTP_PASSWORD", "not-the-password-123")
        status, result = execute(push_body(world))
        assert status == 200
        out = capsys.readouterr().out
        assert "not-the-password-123" not in out and "not-the-password-123" not in str(result)
        self.assert_stored_announced_and_reported(world, result, out, "the server answered 535")
        assert tls_relay.received == []

    def test_untrusted_certificate(
        self,
        world: Deployment,
        tls_relay: Inbox,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # Without SMTP_CA_FILE the system CAs decide, and they do not know this self-signed cert.
        monkeypatch.delenv("SMTP_CA_FILE")
        status, result = execute(push_body(world))
        assert status == 200
        self.assert_stored_announced_and_reported(
            world, result, capsys.readouterr().out, "certificate is not trusted"
        )
        assert tls_relay.received == []


SMTP_GOOD = {**GOOD, "SMTP_HOST": "smtp.acme.example", "SMTP_FROM": "exports@acme.example"}


def smtp_problems(env: dict[str, str]) -> dict[str, str]:
    return {p.name: p.problem for p in settings.load(ExecuteSettings.read, env).problems}


class TestSettings:
    def test_off_unless_smtp_host_is_set(self) -> None:
        loaded = settings.load(ExecuteSettings.read, {**GOOD, "SMTP_USER": "ignored"})
        assert loaded.problems == () and loaded.settings.smtp is None

    def test_defaults(self) -> None:
        loaded = settings.load(ExecuteSettings.read, SMTP_GOOD)
        assert loaded.problems == ()
        smtp = loaded.settings.smtp
        assert smtp is not None
        assert (smtp.host, smtp.port, smtp.starttls, smtp.user, smtp.password) == (
            "smtp.acme.example",
            587,
            True,
            None,
            None,
        )

    @pytest.mark.parametrize(
        ("extra", "name", "fragment"),
        [
            ({"SMTP_FROM": ""}, "SMTP_FROM", "is not set"),
            ({"SMTP_FROM": "not an address"}, "SMTP_FROM", "must be an e-mail address"),
            ({"SMTP_PORT": "70000"}, "SMTP_PORT", "between 1 and 65535"),
            ({"SMTP_USER": "u"}, "SMTP_PASSWORD", "but SMTP_USER is"),
            ({"SMTP_PASSWORD": "p4ssw0rd"}, "SMTP_USER", "is not set"),
            (
                {"SMTP_USER": "u", "SMTP_PASSWORD": "p4ssw0rd", "SMTP_STARTTLS": "0"},
                "SMTP_STARTTLS",
                "in clear",
            ),
            ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS", "must be 1 or 0"),
            ({"SMTP_CA_FILE": "/no/such/ca.pem"}, "SMTP_CA_FILE", "not a readable PEM"),
            ({"SMTP_PASSWORD_SECRET": "pw"}, "SMTP_PASSWORD_SECRET", "projects/P/secrets"),
        ],
    )
    def test_each_bad_setting_is_named(
        self, extra: dict[str, str], name: str, fragment: str
    ) -> None:
        env = {k: v for k, v in {**SMTP_GOOD, **extra}.items() if v}
        found = smtp_problems(env)
        assert fragment in found.get(name, ""), found

    def test_password_from_secret_manager_is_masked_in_logs(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        version = "projects/acme/secrets/smtp-password/versions/2"
        monkeypatch.setattr(
            reader.secrets, "read_secret", SecretManagerDouble({version: "sm-pass-Q8w3\n"})
        )
        env = {**SMTP_GOOD, "SMTP_USER": "mailer", "SMTP_PASSWORD_SECRET": version}
        loaded = settings.load(ExecuteSettings.read, env)
        assert loaded.problems == ()
        assert loaded.settings.smtp is not None
        assert loaded.settings.smtp.password == "sm-pass-Q8w3"
        assert "sm-pass" not in repr(loaded.settings.smtp)
        logs.info("oops: sm-pass-Q8w3 slipped into a message")
        assert "sm-pass-Q8w3" not in capsys.readouterr().out


class TestOnlyWhereTheAdminAllows:
    def test_an_address_outside_the_allowed_domains_is_refused_before_any_export(
        self, world: Deployment, plain_relay: Inbox, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.support.catalogue import assert_nothing_stored

        monkeypatch.setenv("SMTP_ALLOWED_DOMAINS", "acme.org,*.acme.co.uk")
        body = push_body(world)
        body["form_params"]["email"] = "attacker@evil.example"
        status, result = execute(body)
        assert status == 400 and result["success"] is False
        assert result["validation_errors"] == {
            "email": "E-mail goes only to addresses at acme.org, *.acme.co.uk (the admin's "
            "SMTP_ALLOWED_DOMAINS)"
        }
        assert_nothing_stored(world, gcs_untouched=True)
        assert plain_relay.received == []
        body["form_params"]["email"] = "ana@EU.Acme.co.uk"  # a subdomain, any case
        status, result = execute(body)
        assert status == 200 and result["success"] is True, result
        (mail,) = plain_relay.received
        assert mail.rcpt_tos == ["ana@EU.Acme.co.uk"]

    def test_the_form_says_where_mail_may_go(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from tests.support.handlers import TOKEN, app, looker_headers, payload

        monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
        monkeypatch.setenv("SMTP_ALLOWED_DOMAINS", "acme.com")
        answer = (
            app("action_form")
            .test_client()
            .post("/", headers=looker_headers(), json=payload("form.json")["body"])
        )
        (email,) = [f for f in answer.get_json() if f["name"] == "email"]
        assert email["description"].endswith("Only addresses at acme.com.")

    def test_a_bad_domain_is_named_at_start(self) -> None:
        problems = smtp_problems({"SMTP_ALLOWED_DOMAINS": "acme.com,https://x"})
        assert "'https://x' is not a domain" in problems["SMTP_ALLOWED_DOMAINS"]

    def test_unicode_line_breaks_in_the_title_do_not_stop_the_mail(
        self, world: Deployment, plain_relay: Inbox
    ) -> None:
        body = push_body(world)
        body["scheduled_plan"]["title"] = "Weekly\u2028Sales\u2029EMEA\x85Q3"
        status, result = execute(body)
        assert status == 200 and result["message"] == summary(world, only_object(world)), result
        (mail,) = plain_relay.received
        assert mail.message["Subject"] == "Looker export ready: Weekly Sales EMEA Q3"


def test_deploy_warns_when_mail_may_go_anywhere(tmp_path: Path) -> None:
    from tests.support.deploy import PROJECT, run_script

    base = [f"--project={PROJECT}", "--topic=looker-exports", "--smtp-host=smtp.acme.com",
            "--smtp-from=x@acme.com", "--dry-run"]  # fmt: skip
    open_mail = run_script("deploy.sh", base, tmp_path)
    assert open_mail.rc == 0 and "without --smtp-allowed-domains" in open_mail.stderr
    kept = run_script("deploy.sh", [*base, "--smtp-allowed-domains=acme.com"], tmp_path)
    assert kept.rc == 0 and "smtp-allowed-domains" not in kept.stderr
    assert "SMTP_ALLOWED_DOMAINS=acme.com" in kept.stdout

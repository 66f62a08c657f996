"""Settings of moodle_bridge: the web-service token and ``moodle-bridge.toml``.

The token is read from the environment or from a file that only its owner can read; it is
never taken from the TOML settings, which tend to be shared and committed.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from moodle_bridge.errors import ConfigError
from moodle_bridge.moodle.client import DEFAULT_MAX_SITE_WAIT, RetryPolicy
from moodle_bridge.roster.person import DEFAULT_PROFILE_FIELDS

__all__ = [
    "SMTP_PASSWORD_ENV",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "EmailSettings",
    "NotifySettings",
    "Settings",
    "WebhookSettings",
    "load_settings",
    "load_smtp_password",
    "load_token",
]

TOKEN_ENV = "MOODLE_BRIDGE_TOKEN"
TOKEN_FILE_ENV = "MOODLE_BRIDGE_TOKEN_FILE"
SMTP_PASSWORD_ENV = "MOODLE_BRIDGE_SMTP_PASSWORD"


# --- the token ----------------------------------------------------------------------------------
def load_token(env: Mapping[str, str], token_file: Path | None) -> str:
    """Return the Moodle web-service token.

    ``MOODLE_BRIDGE_TOKEN`` wins; otherwise the token is read from the file named by
    ``MOODLE_BRIDGE_TOKEN_FILE`` or, failing that, ``token_file``. Surrounding whitespace is
    stripped. Raises ConfigError when there is no token, it is empty, or the file is missing
    or readable by group or others. No message ever contains the token.
    """
    if TOKEN_ENV in env:
        return _checked(env[TOKEN_ENV], f"${TOKEN_ENV}")
    file_name = env.get(TOKEN_FILE_ENV)
    path = Path(file_name) if file_name else token_file
    if path is None:
        msg = f"no Moodle token: set {TOKEN_ENV}, or {TOKEN_FILE_ENV} to a file holding it"
        raise ConfigError(msg)
    return _checked(_read_private(path.expanduser()), f"token file {path}")


def load_smtp_password(env: Mapping[str, str], password_file: Path | None) -> str:
    """Return the SMTP password for ``[notify] email``: ``MOODLE_BRIDGE_SMTP_PASSWORD``, else
    the owner-only ``password_file``. Like the token, never from the TOML settings.

    Only the line ends around it are stripped: a password may hold spaces. Raises ConfigError
    when there is none or the file is unusable; no message holds the password.
    """
    if SMTP_PASSWORD_ENV in env:
        password, source = env[SMTP_PASSWORD_ENV], f"${SMTP_PASSWORD_ENV}"
    elif password_file is not None:
        path = password_file.expanduser()
        password = _read_private(path, "SMTP password file")
        source = f"SMTP password file {path}"
    else:
        msg = (
            f"[notify.email] has a user but no password: set {SMTP_PASSWORD_ENV}, or "
            "[notify.email] password_file to a file holding it"
        )
        raise ConfigError(msg)
    password = password.strip("\r\n")
    if not password:
        msg = f"the SMTP password from {source} is empty"
        raise ConfigError(msg)
    return password


def _read_private(path: Path, what: str = "token file") -> str:
    try:
        info = path.stat()
    except OSError as exc:
        msg = f"cannot read {what} {path}: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    if not stat.S_ISREG(info.st_mode):
        msg = f"{what} {path} is not a regular file"
        raise ConfigError(msg)
    # Windows has no group/other permission bits to check.
    if os.name == "posix" and info.st_mode & 0o077:
        msg = (
            f"{what} {path} is open to group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"restrict it with: chmod 600 {path}"
        )
        raise ConfigError(msg)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read {what} {path}: {type(exc).__name__}"
        raise ConfigError(msg) from None


def _checked(raw: str, source: str) -> str:
    token = raw.strip()
    if not token:
        msg = f"the Moodle token from {source} is empty"
        raise ConfigError(msg)
    if any(char.isspace() for char in token):
        msg = f"the Moodle token from {source} contains whitespace; it must be one word"
        raise ConfigError(msg)
    return token


# --- settings from moodle-bridge.toml ------------------------------------------------------------
CONFIG_ENV = "MOODLE_BRIDGE_CONFIG"
DEFAULT_CONFIG_FILE = "moodle-bridge.toml"

#: Environment variable -> (section, key). The environment wins over the file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "MOODLE_BRIDGE_URL": ("moodle", "url"),
    "MOODLE_BRIDGE_CA_BUNDLE": ("moodle", "ca_bundle"),
    "MOODLE_BRIDGE_WORKERS": ("moodle", "workers"),
    "MOODLE_BRIDGE_WAIT_FOR_SITE": ("moodle", "wait_for_site"),
    "MOODLE_BRIDGE_STATE_DIR": ("state", "dir"),
    "MOODLE_BRIDGE_ABSENT_GRACE_DAYS": ("sync", "absent_grace_days"),
}


class MoodleSettings(BaseModel):
    """``[moodle]``: where the site is and how hard to push it."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    token_file: Path | None = None
    ca_bundle: Path | None = None
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(120.0, gt=0)
    # Two concurrent clients double a 2-core Moodle's throughput; four add little (contract).
    workers: int = Field(2, ge=1, le=16)
    # PHP keeps 5001 fields with max_input_vars=5000; the margin absorbs a miscount.
    field_budget: int = Field(4990, ge=10)
    max_attempts: int = Field(5, ge=1)
    max_total_wait: float = Field(120.0, ge=0)
    #: The first wait before a retry; each further wait doubles it, up to 30 s (with jitter).
    retry_delay: float = Field(0.5, gt=0)
    #: Wait out a site outage (database down, maintenance) for up to max_site_wait seconds
    #: instead of stopping once max_total_wait is spent.
    wait_for_site: bool = False
    max_site_wait: float = Field(DEFAULT_MAX_SITE_WAIT, ge=0)
    #: Milliseconds of Moodle's time per created or email-changed user above which a run says
    #: the site is probably scanning mdl_user for every email (docs/OPERATIONS.md: the
    #: lower(email) index).
    slow_user_ms: float = Field(40.0, gt=0)

    def retry_policy(self) -> RetryPolicy:
        """The client's retry policy from these settings."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.retry_delay,
            max_total_wait=self.max_total_wait,
            wait_for_site=self.wait_for_site,
            max_site_wait=self.max_site_wait,
        )


class StateSettings(BaseModel):
    """``[state]``: where the bridge keeps its database, journal and reports."""

    model_config = ConfigDict(extra="forbid")

    dir: Path = Path("moodle-bridge-state")


class SyncSettings(BaseModel):
    """``[sync]``: how roster people become accounts, and the safety limits."""

    model_config = ConfigDict(extra="forbid")

    #: Person attribute -> the site's custom profile field shortname; leave one out to not fill it.
    profile_fields: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROFILE_FIELDS))
    #: People without an email (or sharing one) get ``<nip>@<this domain>``: Moodle needs one.
    placeholder_email_domain: str = "no-email.invalid"
    #: A run may suspend at most this share of the managed accounts...
    suspend_share: float = Field(0.05, ge=0, le=1)
    #: ...and at most this many, without --allow-suspend.
    suspend_max: int = Field(500, ge=0)
    #: The circuit breaker stops a run once more than this share of its records failed.
    max_failure_rate: float = Field(0.5, gt=0, le=1)
    #: Days someone missing from their unit's roster keeps an active account: HR exports lag,
    #: and a person moving between units may appear in the other file days later.
    absent_grace_days: int = Field(14, ge=0)


class CohortSettings(BaseModel):
    """``[cohorts]``: what the bridge may do with cohorts linked to courses by cohort sync."""

    model_config = ConfigDict(extra="forbid")

    #: Shortname of a course the administrator linked to the cohort ``bridge:probe`` by cohort
    #: sync. The bridge removes people from its unit and gap cohorts only when a probe on this
    #: course proves that the site's cohort sync suspends, not deletes, on removal.
    probe_course: str | None = None


class EnrolSettings(BaseModel):
    """``[enrol]``: how the bridge enrols people into the courses that close their gaps."""

    model_config = ConfigDict(extra="forbid")

    #: Id of the student role. No web service lists roles, so the first enrolment is read back
    #: and the run stops if this id is not the role named below.
    role_id: int = Field(5, ge=1)
    role: str = "student"
    #: Folder of the mapping tables (competencies, standards, catalogues); default: ./mappings
    #: when it exists, else the one shipped with moodle_bridge.
    mappings_dir: Path | None = None
    #: Enrolment windows open and close at midnight in this timezone.
    timezone: str = "Asia/Jakarta"


class CompletionsSettings(BaseModel):
    """``[completions]``: where the completion pull reads completions."""

    model_config = ConfigDict(extra="forbid")

    #: The custom report listing completions, by id or name; none: the first report shared with
    #: the bridge's user whose columns fit.
    report: int | str | None = None
    #: False: never read a report, always ask person by person.
    use_report: bool = True
    #: Report rows per call (Moodle spends about 1.4 s per 1,000 rows).
    perpage: int = Field(1000, ge=1, le=10000)


class WebhookSettings(BaseModel):
    """``[notify.webhook]``: a URL that receives the run's summary as JSON by POST."""

    model_config = ConfigDict(extra="forbid")

    #: http(s) only. A chat bot's URL often holds its secret: no message ever shows more than
    #: its host.
    url: str
    #: Extra request headers (an ``Authorization`` the receiver wants, for instance).
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(10.0, gt=0)
    #: CA bundle for a receiver with a private CA (TLS is always verified).
    ca_bundle: Path | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        # urllib also opens file:// and ftp:// URLs: a summary must only ever go out by HTTP.
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = "must be an http:// or https:// address"
            raise ValueError(msg)
        # Caught here, not at the first run that needs a human (and never quoted: the path
        # may hold the receiver's secret).
        if any(c.isspace() or not c.isprintable() for c in url):
            msg = "must not contain spaces or control characters"
            raise ValueError(msg)
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            msg = "has a port that is not a number from 0 to 65535"
            raise ValueError(msg) from None
        return url


class EmailSettings(BaseModel):
    """``[notify.email]``: where and how the run's summary is mailed (SMTP)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str
    #: Default: 587 with starttls, 465 with ssl, 25 with none.
    port: int | None = Field(None, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    #: ``starttls`` (upgrade a plain connection; refused if the server cannot), ``ssl`` (TLS
    #: from the first byte) or ``none`` (a relay on the same machine or network).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    #: Log in as this user; the password comes from MOODLE_BRIDGE_SMTP_PASSWORD or
    #: ``password_file``, never from this file.
    user: str | None = None
    password_file: Path | None = None
    timeout: float = Field(10.0, gt=0)

    @property
    def smtp_port(self) -> int:
        """The port to connect to."""
        if self.port is not None:
            return self.port
        return {"starttls": 587, "ssl": 465, "none": 25}[self.security]


class NotifySettings(BaseModel):
    """``[notify]``: who hears about a run that needs a human (exit code 1 or more)."""

    model_config = ConfigDict(extra="forbid")

    webhook: WebhookSettings | None = None
    email: EmailSettings | None = None


class Settings(BaseModel):
    """Everything configurable, from ``moodle-bridge.toml`` and ``MOODLE_BRIDGE_*``."""

    model_config = ConfigDict(extra="forbid")

    moodle: MoodleSettings = MoodleSettings()
    state: StateSettings = StateSettings()
    sync: SyncSettings = SyncSettings()
    cohorts: CohortSettings = CohortSettings()
    enrol: EnrolSettings = EnrolSettings()
    completions: CompletionsSettings = CompletionsSettings()
    notify: NotifySettings = NotifySettings()

    def token(self, env: Mapping[str, str]) -> str:
        """The web-service token (see :func:`load_token`)."""
        return load_token(env, self.moodle.token_file)


def load_settings(env: Mapping[str, str], config_file: Path | None = None) -> Settings:
    """Read the settings: ``config_file``, else ``$MOODLE_BRIDGE_CONFIG``, else
    ``./moodle-bridge.toml`` when it exists; then apply the environment overrides.

    Raises ConfigError naming the file and the bad key.
    """
    named = config_file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    path = named or Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if named is not None or path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            msg = f"cannot read settings file {path}: {exc.strerror or exc}"
            raise ConfigError(msg) from None
        except UnicodeDecodeError:
            msg = f"settings file {path} is not UTF-8 text"
            raise ConfigError(msg) from None
        except tomllib.TOMLDecodeError as exc:
            msg = f"settings file {path} is not valid TOML: {exc}"
            raise ConfigError(msg) from None
    for variable, (section, key) in ENV_OVERRIDES.items():
        if env.get(variable):
            data.setdefault(section, {})[key] = env[variable]
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        msg = f"bad settings ({path} or MOODLE_BRIDGE_* variables): {problems}"
        raise ConfigError(msg) from None


def _problem(error: ErrorDetails) -> str:
    """One problem of the settings, naming the key; never the value, which could be a secret
    written where it does not belong."""
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] != "extra_forbidden":
        return f"{key}: {error['msg']}"
    if error["loc"][-1] == "token":
        return (
            f"unknown key {key} (the token is never read from this file: "
            f"set {TOKEN_ENV} or [moodle] token_file)"
        )
    if error["loc"] == ("notify", "email", "password"):
        return (
            f"unknown key {key} (the SMTP password is never read from this file: "
            f"set {SMTP_PASSWORD_ENV} or [notify.email] password_file)"
        )
    return f"unknown key {key}"

"""S3 credentials files: the INI format of AWS shared credentials files."""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

from drbackup.errors import ConfigError


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def restic_env(self, region: str) -> tuple[tuple[str, str], ...]:
        """The environment restic's S3 backend reads; given to the restic child only."""
        env = [("AWS_ACCESS_KEY_ID", self.access_key_id),
               ("AWS_SECRET_ACCESS_KEY", self.secret_access_key),
               ("AWS_DEFAULT_REGION", region)]
        if self.session_token:
            env.append(("AWS_SESSION_TOKEN", self.session_token))
        return tuple(env)


def read_credentials_file(path: Path, profile: str = "default") -> S3Credentials:
    """Read aws_access_key_id / aws_secret_access_key from an INI file.

    Raises ConfigError naming the file (never its content) when unreadable or incomplete.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"credentials file {path} does not exist",
                          "create it with aws_access_key_id and aws_secret_access_key") from None
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"credentials file {path} cannot be read ({exc.__class__.__name__})",
                          "it must be an INI file with a [default] section") from None
    section = profile if parser.has_section(profile) else None
    if section is None:
        sections = parser.sections()
        if len(sections) == 1:
            section = sections[0]
        else:
            raise ConfigError(f"credentials file {path} has no [{profile}] section",
                              "add [default] with aws_access_key_id and aws_secret_access_key")
    values = parser[section]
    key_id = values.get("aws_access_key_id", "").strip()
    secret = values.get("aws_secret_access_key", "").strip()
    if not key_id or not secret:
        raise ConfigError(
            f"credentials file {path} lacks aws_access_key_id or aws_secret_access_key",
            "add both keys to its [default] section")
    token = values.get("aws_session_token", "").strip() or None
    return S3Credentials(key_id, secret, token)

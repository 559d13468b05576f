"""Reading a TOML config file into the typed models, with errors that name the file, the key path
and the problem, and the checks on secret files that a model alone cannot make."""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from drbackup.config.links import LINK_HINT, link_problem
from drbackup.config.models import Config
from drbackup.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/drbackup/drbackup.toml")
CONFIG_ENV = "DRBACKUP_CONFIG"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_UNSET_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
# Keys whose values name secret files: checked for existence and permissions, and
# ${CREDENTIALS_DIRECTORY} expanded (systemd LoadCredential= puts secrets there).
SECRET_FILE_KEYS = ("password_file", "credentials_file", "maintenance_credentials_file",
                    "passfile", "service_file", "recovery_credentials_file",
                    "metrics_basic_auth_password_file", "metrics_tls_key_file")


class ConfigProblem:
    """One thing wrong with a config: where (key path) and what."""

    def __init__(self, location: str, message: str):
        self.location = location
        self.message = message

    def __str__(self) -> str:
        # One line always: a message may quote user input that held newlines or tabs.
        message = " ".join(self.message.split())
        return f"{self.location}: {message}" if self.location else message


class ConfigInvalid(ConfigError):
    """A config that failed validation; `problems` lists every finding, `message` the first."""

    def __init__(self, path: Path, problems: list[ConfigProblem]):
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s); run 'drbackup config check')" if (
            len(problems) > 1) else ""
        super().__init__(
            f"config {path}: {first}{more}",
            "fix the config file, then run 'drbackup config check'",
        )
        self.path = path
        self.problems = problems


def resolve_config_path(explicit: str | None) -> Path:
    """--config, else $DRBACKUP_CONFIG, else /etc/drbackup/drbackup.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH


def format_location(loc: tuple[int | str, ...]) -> str:
    """('agencies', 1, 'sources', 0, 'directory', 'paths') -> 'agencies[1].sources[0].paths'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            # pydantic's marker for a bad dict key, e.g. a store name: the key itself is wrong.
            out += " (the name)"
        elif part in ("directory", "postgres", "mysql", "sqlite", "dumpdir") and out.endswith("]"):
            # pydantic names the union member it tried; the user's file has no such level.
            continue
        else:
            key = str(part)
            if not _BARE_KEY.fullmatch(key):
                # Quote as TOML would (and keep the line one line): "a b", "\n", "".
                key = json.dumps(key, ensure_ascii=True)
            out += f".{key}" if out else key
    return out


def _problems_from_validation(error: ValidationError) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        message = item["msg"]
        message = message.removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and the example config)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] == "union_tag_invalid":
            message = f"unknown source kind {item.get('input', {}).get('kind')!r}" if isinstance(
                item.get("input"), dict) else message
        problems.append(ConfigProblem(format_location(tuple(item["loc"])), message))
    return problems


def _expand_secret_paths(node: object) -> None:
    """Expand environment variables in secret-file paths, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SECRET_FILE_KEYS and isinstance(value, str):
                node[key] = os.path.expandvars(value)
            else:
                _expand_secret_paths(value)
    elif isinstance(node, list):
        for item in node:
            _expand_secret_paths(item)


def _secret_files(config: Config) -> Iterator[tuple[str, Path]]:
    for key in ("metrics_basic_auth_password_file", "metrics_tls_key_file"):
        secret = getattr(config.daemon, key, None)
        if isinstance(secret, Path):
            yield f"daemon.{key}", secret
    for name, store in config.stores.items():
        if store.credentials_file is not None:
            yield f"stores.{name}.credentials_file", store.credentials_file
        maintenance = getattr(store, "maintenance_credentials_file", None)
        if isinstance(maintenance, Path):
            yield f"stores.{name}.maintenance_credentials_file", maintenance
        if store.recovery_credentials_file is not None:
            yield f"stores.{name}.recovery_credentials_file", store.recovery_credentials_file
    for index, agency in enumerate(config.agencies):
        yield f"agencies[{index}].password_file", agency.password_file
        for number, source in enumerate(agency.sources):
            # Database sources: password files, libpq passfiles and service files.
            for key in ("password_file", "passfile", "service_file"):
                value = getattr(source, key, None)
                if isinstance(value, Path):
                    yield f"agencies[{index}].sources[{number}].{key}", value
    for index, target in enumerate(config.restore_targets):
        if target.password_file is not None:
            yield f"restore_targets[{index}].password_file", target.password_file


def _source_paths(config: Config) -> Iterator[tuple[str, Path]]:
    for index, agency in enumerate(config.agencies):
        for number, source in enumerate(agency.sources):
            where = f"agencies[{index}].sources[{number}]"
            paths = getattr(source, "paths", None)
            if isinstance(paths, list):
                for position, path in enumerate(paths):
                    yield f"{where}.paths[{position}]", path
            path = getattr(source, "path", None)
            if isinstance(path, Path):
                yield f"{where}.path", path


def source_link_problems(config: Config) -> list[ConfigProblem]:
    """A source path (directory paths, drop folder, SQLite file) that is, or goes through, a
    symlink: an agency that can write a linked component could point it at another agency's
    files. The backup checks again (a link may be made after `config check`)."""
    problems = []
    for location, path in _source_paths(config):
        problem = link_problem(path)
        if problem is not None:
            problems.append(ConfigProblem(location, f"{problem} ({LINK_HINT})"))
    return problems


def check_secret_file(location: str, path: Path) -> ConfigProblem | None:
    """A secret file must exist, be a regular file, be readable and not be group/world-readable."""
    unresolved = _UNSET_VAR.search(str(path))
    if unresolved:
        return ConfigProblem(
            location, f"{path} uses ${unresolved.group(1)}, which is not set in this environment"
        )
    try:
        info = path.stat()
    except FileNotFoundError:
        return ConfigProblem(location, f"{path} does not exist")
    except PermissionError:
        return ConfigProblem(location, f"{path} cannot be read by this user")
    except NotADirectoryError:
        return ConfigProblem(location, f"{path} does not exist (a parent is not a directory)")
    except ValueError:  # an embedded NUL byte: no such path can exist
        return ConfigProblem(location, f"{str(path)!r} is not a usable path (it holds a NUL byte)")
    except OSError as exc:  # e.g. ENAMETOOLONG, ELOOP
        return ConfigProblem(location, f"{path} cannot be used: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return ConfigProblem(location, f"{path} is not a regular file")
    if info.st_mode & 0o077:
        return ConfigProblem(
            location,
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}: a secret must not be readable by "
            f"group or others (run: chmod 600 {path})",
        )
    if not os.access(path, os.R_OK):
        return ConfigProblem(location, f"{path} cannot be read by this user")
    return None


def parse_config(text: str, path: Path, *, check_files: bool = True) -> Config:
    """Validate TOML text into a Config. Raises ConfigInvalid listing every problem found."""
    try:
        raw = tomllib.loads(text)
        _expand_secret_paths(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid(path, [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    except RecursionError:
        raise ConfigInvalid(path, [ConfigProblem(
            "", "not valid TOML: arrays or tables are nested too deeply")]) from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigInvalid(path, _problems_from_validation(exc)) from None
    except RecursionError:
        raise ConfigInvalid(path, [ConfigProblem(
            "", "values are nested too deeply to be a drbackup config")]) from None
    if check_files:
        problems = [p for loc, f in _secret_files(config) if (p := check_secret_file(loc, f))]
        problems += source_link_problems(config)
        if problems:
            raise ConfigInvalid(path, problems)
    return config


def load_config(path: Path, *, check_files: bool = True) -> Config:
    """Read and validate the config file. Raises ConfigError when missing, unreadable or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist",
            f"pass --config PATH or set ${CONFIG_ENV}; see config/drbackup.example.toml",
        ) from None
    except (PermissionError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.__class__.__name__}",
                          "check the path and its permissions") from None
    return parse_config(text, path, check_files=check_files)

"""config/drbackup.example.toml is generated from the models and is itself a valid config."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from drbackup.config import parse_config
from drbackup.config.example import render_example, source_kinds
from drbackup.config.models import (
    AgencyConfig,
    DaemonConfig,
    RetentionConfig,
    StoreConfig,
    VerifyConfig,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "drbackup.example.toml"


def test_example_file_matches_the_models() -> None:
    assert EXAMPLE.read_text() == render_example(), (
        "config/drbackup.example.toml is stale: run 'make example'")


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    assert "[[agencies.sources]]" in text
    assert "[agencies.retention]" in text
    models: list[type[BaseModel]] = [DaemonConfig, StoreConfig, AgencyConfig, VerifyConfig,
                                     RetentionConfig, *source_kinds()]
    for model in models:
        for name, info in model.model_fields.items():
            if model is AgencyConfig and name == "sources":
                continue  # shown as [[agencies.sources]] tables
            name = info.alias or name
            assert f"{name} = " in text or f"[agencies.{name}]" in text, (
                f"{model.__name__}.{name} missing from the example")


def test_example_passes_config_check_with_its_secret_files(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    # Point the example's secret files and directories into a sandbox, create the files, check.
    text = text.replace("/etc/drbackup", str(tmp_path / "etc"))
    (tmp_path / "etc").mkdir()
    for name in ("planning.password", "offsite.credentials", "offsite-maintenance.credentials",
                 "offsite-readonly.credentials"):
        secret = tmp_path / "etc" / name
        secret.write_text("x\n")
        secret.chmod(0o600)
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("password_file", "credentials_file")) and "=" in stripped:
            path = Path(stripped.split("=", 1)[1].strip().strip('"'))
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("x\n")
                path.chmod(0o600)
    config = parse_config(text, tmp_path / "example.toml")
    assert config.agencies and config.agencies[0].sources

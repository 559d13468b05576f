"""The city inventory: a plain list or TOML, every id checked, a bad line named."""

from __future__ import annotations

import pytest

from drbackup.errors import ConfigError
from drbackup.fleet.inventory import ExpectedAgency, parse_inventory


def test_plain_list_with_comments() -> None:
    assert parse_inventory("# city agencies\nplanning\n\n water-board  # since 2026\n") == [
        ExpectedAgency("planning"), ExpectedAgency("water-board")]


def test_toml_with_levels_and_names() -> None:
    text = '[agencies.planning]\nlevel = 3\nname = "规划局"\n\n[agencies.zoo]\n'
    assert parse_inventory(text) == [ExpectedAgency("planning", 3, "规划局"),
                                      ExpectedAgency("zoo")]


@pytest.mark.parametrize("text", [
    "planning\n../etc\n", "planning\nplanning\n", "[agencies.planning]\nlevel = 7\n",
    "[agencies.planning]\nowner = \"x\"\n", "[agencies.planning\n", "[agencies]\nBAD = {}\n",
    "[agencies.planning]\nlevel = true\n"])
def test_malformed_inventories_are_refused_naming_the_problem(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_inventory(text, where="city.toml")
    assert refused.value.message.startswith("city.toml: ")
    assert "docs/fleet.md" in refused.value.hint

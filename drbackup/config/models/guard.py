"""[agencies.guard]: the ransomware guard's thresholds, sample budget and extra indicators
(docs/guard.md). On by default; every directory source of the agency is assessed."""

from __future__ import annotations

from pydantic import Field, field_validator

from drbackup.config.models.base import StrictModel
from drbackup.config.units import ByteSize


def _no_newlines(values: list[str]) -> list[str]:
    for value in values:
        if not value.strip() or any(c in value for c in "\n\r\t\0"):
            raise ValueError(f"{value!r} is empty or holds a control character")
    return values


class GuardConfig(StrictModel):
    """How backups of this agency's directory sources are judged clean or suspect."""

    enabled: bool = Field(
        True, description=(
            "Assess every backup of a directory source; a suspect snapshot freezes the "
            "agency's retention until 'drbackup guard release'."))
    hit_share: float = Field(
        0.05, gt=0, le=1, description=(
            "Files that look encrypted (or renamed with rewritten bytes) make a snapshot "
            "suspect from this share of the source's files, or from hit_files files, "
            "whichever is fewer (but never below min_hits)."))
    hit_files: int = Field(200, ge=1, description="See hit_share.")
    min_hits: int = Field(
        5, ge=1, description=(
            "Fewest such files, and fewest new files with a ransomware extension, that make "
            "a snapshot suspect."))
    note_dirs: int = Field(
        3, ge=1, description="Ransom notes in this many directories make a snapshot suspect.")
    learning_backups: int = Field(
        7, ge=1, le=1000, description=(
            "Assessed backups of a source before its churn baseline is used (the other "
            "signals apply from the first backup)."))
    baseline_backups: int = Field(
        30, ge=1, le=10000,
        description="Clean snapshots the churn baseline is taken over (the most recent).")
    churn_percentile: float = Field(
        95.0, gt=0, le=100, description="The baseline: this percentile of their churn.")
    churn_factor: float = Field(
        3.0, ge=1, description=(
            "Churn (share of files modified or gone) counts from this many times the "
            "baseline, and from churn_floor at least, when another sign of an attack is "
            "there."))
    churn_floor: float = Field(0.05, gt=0, le=1, description="See churn_factor.")
    sample_files: int = Field(
        200, ge=0, le=100_000, description=(
            "Changed files read back after each backup (modified ones first) to test their "
            "content."))
    sample_bytes: ByteSize = Field(
        32 * 1024**2, description="Most bytes read back after each backup.",
        examples=["32MiB"])
    file_bytes: ByteSize = Field(
        64 * 1024, description=(
            "Most bytes read of one file (head, tail and windows in between)."),
        examples=["64KiB"])
    extra_notes: list[str] = Field(
        default_factory=list, description=(
            "Ransom-note file name globs besides the shipped ones "
            "(drbackup/guard/indicators.json)."),
        examples=[["*_RESTORE_MY_FILES.html"]])
    extra_extensions: list[str] = Field(
        default_factory=list,
        description="Ransomware file extensions besides the shipped ones.",
        examples=[[".akira"]])
    ignore: list[str] = Field(
        default_factory=list, description=(
            "Globs of paths the guard does not judge (* also matches /), e.g. a photo or "
            "encrypted-archive folder."),
        examples=[["/srv/planning/photos/*"]])

    _checked = field_validator("extra_notes", "extra_extensions", "ignore")(_no_newlines)

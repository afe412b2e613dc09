"""Shared fixtures. Real data is read from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MOLW2S_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data directory; in CI it must exist, elsewhere tests needing it skip."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared data directory at {SHARED_DATA}")
        pytest.skip(f"shared data not found at {SHARED_DATA} (set MOLW2S_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def moleculenet_dir(shared_data: Path) -> Path:
    """../shared/data/moleculenet: ESOL, FreeSolv, Lipop (ChemBench layout) and splits/."""
    return shared_data / "moleculenet"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the molw2s cache at a temp dir so tests never touch ~/.cache or the network."""
    monkeypatch.setenv("MOLW2S_DATA_DIR", str(tmp_path_factory.mktemp("molw2s_cache")))

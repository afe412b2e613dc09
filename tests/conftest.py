"""Shared fixtures. Real data is read from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temp molw2s cache for the whole session, set before any module-scoped fixture
    runs, so no test ever writes to ~/.cache/molw2s."""
    old = os.environ.get("MOLW2S_DATA_DIR")
    os.environ["MOLW2S_DATA_DIR"] = str(tmp_path_factory.mktemp("molw2s_session_cache"))
    yield
    if old is None:
        os.environ.pop("MOLW2S_DATA_DIR", None)
    else:
        os.environ["MOLW2S_DATA_DIR"] = old


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh molw2s cache per test (module fixtures use the session one)."""
    monkeypatch.setenv("MOLW2S_DATA_DIR", str(tmp_path_factory.mktemp("molw2s_cache")))

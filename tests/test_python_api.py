"""The library's own edge: `Settings`, `Pipeline.ask/retrieve` and the document calls, used
from Python with wrong types, get a one-line QAError, never a TypeError from deep inside."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import BadSetting, Settings, load_settings


@pytest.mark.parametrize(("values", "message"), [
    ({"k": "5"}, "k must be an integer, got '5'"),
    ({"k": True}, "k must be an integer, got True"),
    ({"chunk_chars": None}, "chunk_chars must be an integer, got None"),
    ({"hnsw_above": 1.5}, "hnsw_above must be an integer, got 1.5"),
    ({"model": None}, "model must be a string, got None"),
    ({"backend": 1}, "backend must be a string, got 1"),
    ({"refresh_seconds": "1"}, "refresh_seconds must be a number, got '1'"),
    ({"index_dir": None}, "index_dir must be a folder path, got None"),
    ({"seeds_dir": ""}, "seeds_dir must be a folder path, got ''"),
    ({"allowed_hosts": "localhost"}, "allowed_hosts must be a tuple of host names"),
    ({"allowed_hosts": ("a", 5)}, "allowed_hosts must be a tuple of host names"),
])
def test_settings_of_the_wrong_type_are_a_bad_setting(values: dict, message: str) -> None:
    with pytest.raises(BadSetting) as err:
        Settings(**values)
    assert message in str(err.value)


def test_settings_take_folders_as_strings(tmp_path: Path) -> None:
    s = Settings(index_dir=str(tmp_path / "i"), seeds_dir=str(tmp_path), data_dir=str(tmp_path))
    assert s.index_dir == tmp_path / "i" and isinstance(s.seeds_dir, Path)
    assert s.documents_dir == tmp_path
    assert Settings(allowed_hosts=["a.example"]).allowed_hosts == ("a.example",)
    with pytest.raises(BadSetting, match="k must be an integer, got '3'"):
        load_settings(k="3")

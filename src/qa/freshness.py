"""Keeping a long-running server true to its files: which documents of the loaded index
still match their source files, whether a newer build is on disk, and the index to serve
meanwhile.

In: a loaded `Index` and the settings' folders. Out: `Freshness.check()` says whether the
index must be reloaded (a new build id in the manifest, a seed added, changed or removed,
an upload added or removed in the data folder, by this process or another);
`Freshness.withheld` names every document whose file no longer holds the text it was
indexed from: the pipeline searches the other documents only, so nothing cites text that
is gone. Checks are cheap: a `stat`
per file, and a hash only when size or modification time moved. An upload (a folder of the
data folder) changes only by being added or removed, by this process or another sharing
the data folder: it is withheld once its file is gone, looked at only when the data
folder's own stat moved (and, for the documents an answer quotes, after each answer).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from qa import atomic
from qa.loaders.library import held_in_process
from qa.store import MANIFEST, Index, StatKey, stat_key


def manifest_path(index_dir: Path) -> Path:
    return index_dir / MANIFEST


def file_sha256(path: Path) -> str | None:
    """The file's SHA-256, or None when it cannot be read (gone, unreadable)."""
    try:
        return atomic.file_sha256(path)
    except OSError:
        return None


@dataclass
class _Seen:
    """One document's file as last verified: its stat, and whether it held the indexed bytes."""

    path: Path
    key: StatKey | None
    ok: bool
    sha256: str | None = None
    upload: bool = False  # verified by being there (its stat), not by its hash


class Freshness:
    """Per loaded index: the verified state of its files and the view to serve."""

    def __init__(self, seeds_dir: Path, index_dir: Path, data_dir: Path | None = None) -> None:
        self.seeds_dir = seeds_dir
        self.index_dir = index_dir
        # uploads added or removed by another process (another index on the same QA_DATA,
        # `qa add`): the folder's entries change, and so does its stat
        self.data_dir = data_dir
        self._data_real = data_dir.resolve() if data_dir is not None else None
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._seen: dict[str, _Seen] = {}
        self._manifest_key: StatKey | None = None
        self._seeds_key: StatKey | None = None
        self._data_key: StatKey | None = None

    @property
    def withheld(self) -> frozenset[str]:
        return frozenset(k for k, s in self._seen.items() if not s.ok)

    def install(self, index: Index) -> bool:
        """Verify every document of a newly loaded `index` by hash; True if one no longer
        matches its file or a newer build is already on disk (so reload again)."""
        seen = {}
        # from the manifest: a reload (after every upload and removal) decodes no text
        for doc in index.manifest_record.documents:
            path = Path(doc.path)
            if self._is_upload(path):  # removed (perhaps by another process) or not
                key = stat_key(path)
                seen[doc.id] = _Seen(path, key, key is not None, upload=True)
                continue
            if not self._is_seed(path):
                continue
            key = stat_key(path)
            expected = doc.sha256  # the file's hash, as the build saw it
            seen[doc.id] = _Seen(path, key, key is not None and file_sha256(path) == expected,
                                 expected)
        with self._lock:
            self._index = index
            self._seen = seen
            self._manifest_key = stat_key(manifest_path(self.index_dir))
            self._seeds_key = stat_key(self.seeds_dir)
            if self._data_key is None:  # later, `check` alone: a change while this index
                self._data_key = self._data_stat()  # loaded is reloaded for again
        newer = _build_id(self.index_dir) not in (None, index.manifest.get("data"))
        return bool(self.withheld) or newer

    def data_seen(self) -> None:
        """This process changed the data folder (an add or a removal, under the data lock:
        no other writer's change is mixed in) and reloaded for it: no reload to start."""
        self._data_key = self._data_stat()

    def _data_stat(self) -> StatKey | None:
        return stat_key(self.data_dir) if self.data_dir is not None else None

    def _is_seed(self, path: Path) -> bool:
        return path.parent.resolve() == self.seeds_dir.resolve()

    def _is_upload(self, path: Path) -> bool:
        """Is `path` the file of an upload (`<data folder>/<id>/original.<ext>`)?"""
        folder = path.parent.parent
        return self.data_dir is not None and (folder == self.data_dir
                                              or folder.resolve() == self._data_real)

    def unverified(self, index: Index) -> frozenset[str]:
        """The documents of `index` not known to match their files now: withheld ones, and
        any this check has not verified (a request may still hold an index that a reload
        replaced: its removed documents must not be searched either)."""
        seen = self._seen
        if self._index is index:
            return frozenset(k for k, s in seen.items() if not s.ok)
        return frozenset(
            doc.id for doc in index.manifest_record.documents
            if (doc.id in seen and not seen[doc.id].ok)
            or (doc.id not in seen and (self._is_seed(Path(doc.path)) or (
                self._is_upload(Path(doc.path)) and stat_key(Path(doc.path)) is None))))

    def is_current(self, doc_ids: set[str]) -> bool:
        """Cheap: do these documents' files still hold what was indexed (stat only)? False
        for a document withheld meanwhile: an answer begun before still quoted it."""
        seen = self._seen

        def current(doc_id: str) -> bool:
            known = seen.get(doc_id)
            if known is None:
                return True
            key = stat_key(known.path)
            return known.ok and (key is not None if known.upload else key == known.key)

        return all(current(doc_id) for doc_id in doc_ids)

    def check(self, reloading: bool = False) -> bool:
        """Look at the files; True when the index should be reloaded. Documents whose file
        changed or vanished are withheld at once. While `reloading`, a new
        manifest is left for `install` to compare (it is most likely the reload's own)."""
        index = self._index
        if index is None:
            return False
        reload = False
        # this process's own add or removal (under the data lock) builds and installs its
        # index itself, then says so (`data_seen`): a check while it writes the manifest and
        # the data folder must not start a second reload; once it is done, the new manifest
        # is the installed index's and the data folder's stat the one it left
        writing = self.data_dir is not None and held_in_process(self.data_dir)
        key = stat_key(manifest_path(self.index_dir))
        if key != self._manifest_key and not reloading and not writing:
            self._manifest_key = key
            reload |= _build_id(self.index_dir) not in (None, index.manifest.get("data"))
        key = stat_key(self.seeds_dir)
        if key != self._seeds_key:
            self._seeds_key = key
            reload = True  # a file added, removed or renamed
        key = self._data_stat()
        data_changed = key != self._data_key and not writing
        if data_changed:
            self._data_key = key
            reload = True  # an upload added or removed, perhaps by another process
        seen_now = dict(self._seen)
        for doc_id, seen in seen_now.items():
            if seen.upload:  # removed with the data folder's stat moving: withheld until
                if data_changed:  # the reload (which that change starts) drops it
                    key = stat_key(seen.path)
                    seen_now[doc_id] = _Seen(seen.path, key, key is not None, upload=True)
                continue
            key = stat_key(seen.path)
            if key == seen.key:
                continue
            ok = key is not None and file_sha256(seen.path) == seen.sha256
            seen_now[doc_id] = _Seen(seen.path, key, ok, seen.sha256)
            reload |= not ok
        with self._lock:
            if self._index is index:  # not replaced by a reload meanwhile
                self._seen = seen_now
        return reload


def _build_id(index_dir: Path) -> str | None:
    try:
        data = json.loads(manifest_path(index_dir).read_text(encoding="utf-8")).get("data")
    except (OSError, ValueError, AttributeError):
        return None
    return str(data) if data is not None else None

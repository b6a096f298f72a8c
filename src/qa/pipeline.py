"""The pipeline the edges share: settings + embedder + index, loaded once, on first use.

In: a question (and, for `ask`, the conversation so far). Out: `Hit`s or an `Answer`.
The CLI, the HTTP API, the web chat and the evaluation harness all go through here, so
they give the same answer to the same question.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import numbers
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from qa.answering import compose, found_nothing
from qa.config import (
    MAX_K,
    Settings,
    check_writable_dir,
    load_settings,
    spacy_processes,
)
from qa.embedding import Embedder, make_embedder
from qa.errors import (
    WRITE_ERRNOS,
    BadQuestion,
    BadSetting,
    FolderNotWritable,
    NothingToIndex,
    QAError,
    ShuttingDown,
    WriteError,
    describe_os_error,
    quoted,
)
from qa.evidence import Evidence, follow_up_sentence, gather_evidence, quoted_sentences
from qa.expansion import WordVectors, load_word_vectors
from qa.freshness import Freshness
from qa.lexical import tokenize
from qa.log import log
from qa.nlp import (
    Analyzer,
    QuestionInfo,
    ask_again,
    check_spacy,
    make_analyzer,
    resolve,
    sentence_mentions,
    similarity_typer,
)
from qa.retrieval import Query, Weights, retrieve, search
from qa.schema import clean_question, clean_turn, earlier_answer, turn_name
from qa.store import (
    BuildStop,
    Index,
    committed,
    committed_by,
    load_index,
    open_index,
    sticky_ids,
)
from qa.types import Answer, Document, Hit, Sentence, Turn

if TYPE_CHECKING:
    from qa.loaders import BadDocument
    from qa.loaders.library import Entry, Prepared, PreviousIds, Problem

CONTEXT_WEIGHT = 0.5  # weight of the previous turn in a follow-up's query
EMBED_THREADS = 8  # questions embedded at once beside their parse (one per request in flight)
# The answer to any question while the library holds no document (every edge says this)
EMPTY_LIBRARY = ("There are no documents to answer from: the library is empty. "
                 "Add a document first.")
WH_WORD = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b", re.IGNORECASE)

R = TypeVar("R")


def check_content(text: str, info: QuestionInfo) -> None:
    """Reject content-free input ("?", "a", an emoji): no letter or digit, or no subject, no
    content word and no question word in the parse `info` of the cleaned `text`."""
    if not any(ch.isalnum() for ch in text) or (
            not info.has_subject and not tokenize(text) and not WH_WORD.search(text)):
        raise BadQuestion(f"{text!r} is not a question: ask about the documents in words")


def check_question(question: str, analyzer: Analyzer) -> str:
    """The check every `ask` makes, on its own: `clean_question`, then `check_content` on
    `analyzer`'s parse (`qa eval --strict` runs it over a test set before the run)."""
    text = clean_question(question)
    check_content(text, analyzer.question(text))
    return text


def check_destinations(settings: Settings, building: bool | None = None) -> None:
    """Before any model loads: the index folder must be writable when a build will (or, for
    `building=None`, may: no manifest yet) be needed, and must not be among the documents
    (the seeds folder or a folder in it: its files would be listed as skipped documents,
    and the data folder beside it would fall in the seeds folder), nor the data folder
    among the seeds or the index among the uploads (`check_data_placement`). BadSetting
    names it."""
    seeds, index = settings.seeds_dir.resolve(), settings.index_dir.resolve()
    if index == seeds or seeds in index.parents:
        raise BadSetting(f"the index folder {str(settings.index_dir)!r} must not be the seeds "
                         "folder or inside it")
    from qa.loaders.library import check_data_placement

    # (a seeds "folder" that is a file was found only by the build, after "building it")
    if settings.seeds_dir.exists() and not settings.seeds_dir.is_dir():
        raise BadSetting(f"the seeds folder {str(settings.seeds_dir)!r} is not a folder")
    check_data_placement(settings)
    data = settings.documents_dir
    if data.exists() and not data.is_dir():  # it was read as an empty library, a record
        raise BadSetting(f"the data folder {str(data)!r} is not a folder")  # in it skipped
    manifest = settings.index_dir / "manifest.json"
    if manifest.exists() and not manifest.is_file():  # found only after a whole build
        raise BadSetting(f"{str(manifest)!r} is not a file: qa writes the index's manifest "
                         "there; remove or rename it")
    if building is None:
        building = not manifest.is_file()
    if building:
        check_writable_dir(settings.index_dir, "index folder")


def preflight(settings: Settings, building: bool | None = None) -> None:
    """Every check a command makes before any model loads: `check_destinations`, and that the
    spaCy pipeline (QA_SPACY) is installed (`check_spacy`; it was found missing only when the
    first passage was analysed, after every passage of a build had been embedded)."""
    check_destinations(settings, building)
    check_spacy(settings.spacy)


def check_k(k: int) -> int:
    """`k` as an int: numpy's integers too, as `Settings` takes them (not True, not 2.0)."""
    whole = not isinstance(k, bool) and isinstance(k, numbers.Integral)
    if not whole or not 1 <= k <= MAX_K:
        shown = int(k) if whole else k
        raise BadQuestion(f"k must be an integer from 1 to {MAX_K}, got {shown!r}")
    return int(k)


def check_history(history: Sequence[str | Turn] | None) -> list[Turn]:
    """The earlier turns as `Turn`s, each question cleaned as the edges clean it; a bad one
    is a BadQuestion naming it ("history turn 2 is empty"), never a TypeError from deep in
    the parse. A lone string is refused: it would be read as one turn per character."""
    if history is None:
        return []
    if isinstance(history, str | bytes) or not isinstance(history, Iterable):
        raise BadQuestion("history must be a list of earlier questions or Turns, got "
                          f"{type(history).__name__}")
    turns = []
    for n, turn in enumerate(history, start=1):
        if isinstance(turn, Turn):
            question, answer = turn.question, turn.answer
        elif isinstance(turn, str):
            question, answer = turn, None
        else:
            raise BadQuestion(f"{turn_name(n)} must be a question or a Turn, got "
                              f"{type(turn).__name__}")
        if answer is not None and not isinstance(answer, str):
            raise BadQuestion(f"the answer of {turn_name(n)} must be text")
        turns.append(Turn(clean_turn(question, n), earlier_answer(answer)))
    return turns


def _consistent(method: Callable[..., R]) -> Callable[..., R]:
    """One index for the whole call, even if a reload swaps it meanwhile; while watching,
    check freshness first, and answer again if a quoted file changed under the answer."""

    @functools.wraps(method)
    def wrapper(self: Pipeline, *args: Any, **kwargs: Any) -> R:
        if getattr(self._pinned, "active", False):
            return method(self, *args, **kwargs)
        if self._watching:
            self.refresh()
        for attempt in range(2):
            with self._pin():
                result = method(self, *args, **kwargs)
            if not self._watching or attempt or self._still_in_source(result):  # type: ignore[arg-type]
                break
            self.refresh(force=True)  # withholds the changed file before answering again
        return result

    return wrapper


class Pipeline:
    """One loaded model and index, safe to share between threads."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 analyzer: Analyzer | None = None) -> None:
        self.settings = settings or load_settings()
        self.embedder = embedder or make_embedder(self.settings)
        self.analyzer = analyzer or make_analyzer(self.settings.spacy, similarity_typer(
            lambda word: (table.vector(word) if (table := self.words()) else None)),
            spacy_processes(self.settings))
        self.weights = Weights()
        self._index: Index | None = None
        self._words: WordVectors | None = None
        self._words_loaded = False
        self._lock = threading.Lock()
        self._words_lock = threading.Lock()
        # question embeddings run here while the question is parsed (threads start on use)
        self._embedding_pool = ThreadPoolExecutor(EMBED_THREADS, thread_name_prefix="qa-embed")
        # Freshness (a server's `watch()`): see `refresh`.
        self._fresh = Freshness(self.settings.seeds_dir, self.settings.index_dir,
                                self.settings.documents_dir)
        self._watching = False
        self._withholding = False  # (not watching) serving a stale index: `_as_built`
        self._stale: tuple[str, Index | None] = ("", None)  # ... why it could not be
        # rebuilt, and that index
        self._pinned = threading.local()  # the index one ask/retrieve call uses throughout
        self._check_lock = threading.Lock()
        self._last_check = 0.0
        self._reload_lock = threading.Lock()
        self._reloading = False
        self._reload_again = False
        self._reload_error = ""
        self._stop = threading.Event()
        self._docs_lock = threading.Lock()
        self._build_stop = BuildStop()  # set when a server shuts down (`stop_indexing`)
        self._opening = 0  # `_open` calls in progress (loads and builds), for `wait_idle`
        self._opening_lock = threading.Lock()

    def words(self) -> WordVectors | None:
        """The model's word table for query expansion (None for embedders without one)."""
        with self._words_lock:
            if not self._words_loaded:
                self._words = load_word_vectors(self.embedder, self.settings.cache_dir,
                                                self.settings.index_dir)
                self._words_loaded = True
            return self._words

    def _words_for_build(self) -> WordVectors | None:
        """Called by `open_index` just before a build: check the destination first, so a bad
        index folder is reported before the model loads, not after the corpus is embedded."""
        check_writable_dir(self.settings.index_dir, "index folder")
        return self.words()

    @property
    def index(self) -> Index:
        """The index, loaded (or built, if missing or stale) on first access; within one
        `ask`/`retrieve` call, the same index throughout; while watching, less any document
        whose file changed since it was indexed."""
        pinned = getattr(self._pinned, "index", None)
        if pinned is not None:
            return pinned
        with self._lock:
            if self._index is None:
                self._install(self._open(stale_ok=True))
            assert self._index is not None
            index = self._index
        if getattr(self._pinned, "active", False):
            self._pinned.index = index
        return index

    def _open(self, rebuild: bool = False, empty_ok: bool = False,
              stale_ok: bool = False) -> Index:
        """The index, loaded or (re)built (`open_index`). With `stale_ok`, an index whose
        documents changed but that cannot be rebuilt (its folder is read-only, or full) is
        served as it is, the documents whose files changed withheld (`_as_built`)."""
        with self._opening_lock:
            self._opening += 1
        try:
            return open_index(self.settings, self.embedder, rebuild=rebuild,
                              words=self._words_for_build, annotate=self._annotate,
                              annotator=f"qa-mentions/{self.analyzer.name}",
                              empty_ok=empty_ok, stop=self._build_stop)
        except (WriteError, FolderNotWritable, OSError) as exc:
            # cannot write (not a thing in the way, such as a folder for the lock file)
            writing = isinstance(exc, FolderNotWritable) or exc.errno in WRITE_ERRNOS
            index = self._as_built(exc) if stale_ok and not rebuild and writing else None
            if index is None:
                raise
            return index
        finally:
            self.analyzer.close()  # the helper processes a large build started
            with self._opening_lock:
                self._opening -= 1

    def _as_built(self, failure: Exception) -> Index | None:
        """The index on disk as it was built, when only its documents changed since (not the
        model nor the settings) and the rebuild failed (`failure`: a read-only folder, a
        full disk); None if there is none such. One warning says so, naming the documents
        whose files changed: they are withheld from then on (their indexed text is no longer
        their file's, so a quote of it could not be checked against the file), as a server
        withholds a file that changes under it."""
        try:
            index = load_index(self.settings, check_seeds=False,
                               annotator=f"qa-mentions/{self.analyzer.name}")
        except QAError:
            return None
        self._fresh.install(index)
        self._withholding = True
        withheld = sorted(self._fresh.withheld)
        why = describe_os_error(failure) if isinstance(failure, OSError) else str(failure)
        self._stale = (why, index)
        log(f"warning: the index in {str(self.settings.index_dir)!r} is stale and cannot be "
            f"rebuilt ({why}); answering from it as it was built"
            + (f", without the documents changed since: {', '.join(withheld)}" if withheld
               else ""))
        return index

    @property
    def stale(self) -> str:
        """Why the index served is stale and could not be rebuilt ("" if it is not, or
        no longer: a server's reload replaced it): `_as_built`."""
        why, index = self._stale
        return why if index is not None and index is self._index else ""

    def _annotate(self, sentences: list[Sentence]) -> list[dict[str, Any]]:
        """The index's per-sentence annotations: entities and noun chunks (spaCy)."""
        return [{"m": m} for m in sentence_mentions(sentences, self.analyzer)]

    def searchable(self, index: Index, doc_ids: Iterable[str] | None = None
                   ) -> frozenset[str] | None:
        """The documents a question may be answered from: `doc_ids` (None: all; an empty list
        is a BadQuestion, not all), less those whose file changed or vanished since they were
        indexed (until re-indexed)."""
        withheld = (self._fresh.unverified(index) if self._watching or self._withholding
                    else frozenset())
        if isinstance(doc_ids, str):
            doc_ids = [doc_ids]
        elif doc_ids is not None and not isinstance(doc_ids, Iterable):
            raise BadQuestion(f"doc_ids must be a list of document ids, got {doc_ids!r}")
        wanted = frozenset(doc_ids) if doc_ids is not None else frozenset()
        if doc_ids is not None and not wanted:  # never silently widened to every document
            raise BadQuestion("doc_ids is empty: name at least one document, or leave doc_ids "
                              "out to search them all")
        unknown = sorted(wanted - set(index.documents))
        if unknown:
            raise BadQuestion(f"unknown document id {quoted(unknown[0])}")
        if not wanted and not withheld:
            return None
        return (wanted or frozenset(index.documents)) - withheld

    def rebuild(self) -> Index:
        """Build the index from the seeds now, whatever is on disk."""
        with self._lock:
            self._install(self._open(rebuild=True))
            assert self._index is not None
            return self._index

    def _install(self, index: Index) -> None:
        self._index = index
        if self._watching and self._fresh.install(index):
            self._start_reload()

    # -- freshness: a running server follows its files ---------------------------------------

    def watch(self) -> None:
        """Follow the files from now on: every `settings.refresh_seconds` (and before each
        answer) look for a new build or changed seeds; reload in the background."""
        if self._watching:
            return
        self._watching = True
        if self._index is not None and self._fresh.install(self._index):
            self._start_reload()
        threading.Thread(target=self._watch_loop, name="qa-refresh", daemon=True).start()

    def unwatch(self) -> None:
        self._stop.set()

    def stop_indexing(self) -> None:
        """A server is shutting down: every build in progress stops at its next batch and
        leaves the index as it was (an upload it was for is not added: `ShuttingDown`), and
        none starts. Returns at once (a manifest swap in progress ends first: ms)."""
        self._build_stop.set()

    @property
    def stopping(self) -> bool:
        """Has `stop_indexing` been called (the server is shutting down)?"""
        return self._build_stop.is_set()

    def busy(self) -> bool:
        """Is an upload, a removal, or a load or build of the index in progress?"""
        return self._docs_lock.locked() or self._opening > 0

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` s for `busy()` to end; True if it did. After `stop_indexing`
        a build ends at its next batch: the process may then exit without killing one in
        the middle of the model (a thread killed there aborts the interpreter)."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _watch_loop(self) -> None:
        while not self._stop.wait(self.settings.refresh_seconds):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a watcher must outlive one bad check
                log(f"warning: freshness check failed: {type(exc).__name__}: {exc}")

    def refresh(self, force: bool = False) -> None:
        """Cheap check (at most every `refresh_seconds` unless `force`): changed or removed
        documents are withheld at once; a new build or changed seeds start a background
        reload, and answers come from the last consistent index meanwhile."""
        now = time.monotonic()
        if not force and now - self._last_check < self.settings.refresh_seconds:
            return
        if not self._check_lock.acquire(blocking=force):
            return  # another thread is checking right now
        try:
            self._last_check = now
            if self._fresh.check(self._reloading):
                self._start_reload()
        finally:
            self._check_lock.release()

    def _start_reload(self) -> None:
        with self._reload_lock:
            if self._reloading:
                self._reload_again = True
                return
            self._reloading = True
            self._reload_again = False
        threading.Thread(target=self._reload_loop, name="qa-reindex", daemon=True).start()

    def _reload_loop(self) -> None:
        while True:
            withheld = sorted(self._fresh.withheld)
            if withheld:
                log(f"re-indexing in the background (changed or removed: {', '.join(withheld)})")
            try:
                index = self._open()
            except ShuttingDown:
                with self._reload_lock:
                    self._reloading = False
                return
            except Exception as exc:  # noqa: BLE001 - reported by /healthz; old index stays
                self._reload_error = (str(exc) if isinstance(exc, QAError)
                                      else f"{type(exc).__name__}: {exc}")
                log(f"error: re-index failed: {self._reload_error}; still answering from the "
                    "last index" + (f" without {', '.join(withheld)}" if withheld else ""))
            else:
                self._reload_error = ""
                with self._lock:
                    served = self._index.manifest.get("data") if self._index else None
                    self._install(index)
                # a reload started by a mere stat change may find the build it serves
                if index.manifest.get("data") != served or withheld:
                    log(f"now answering from index {index.manifest.get('data')} "
                        f"({len(index.documents)} document(s))")
            with self._reload_lock:
                if not self._reload_again:
                    self._reloading = False
                    return
                self._reload_again = False

    def freshness(self) -> dict[str, Any]:
        """For `/healthz`: the build served, its counts now, withheld documents, re-indexing."""
        index = self._index
        body: dict[str, Any] = {"reindexing": self._reloading}
        if index is not None:
            withheld = sorted(self._fresh.withheld) if self._watching else []
            body["build"] = index.manifest.get("data")
            body.update(index.manifest.get("counts", {}))
            body["documents"] = body.get("documents", 0) - len(withheld)
            body["withheld"] = withheld
        if self._reload_error:
            body["reindex_error"] = self._reload_error
        return body

    def _still_in_source(self, result: Answer | list[Hit] | tuple[Any, Index]) -> bool:
        """Cheap: do the files of every document this result quotes still look as verified?"""
        found: Answer | list[Hit] = result[0] if isinstance(result, tuple) else result
        hits = found if isinstance(found, list) else [*found.passages]
        docs = {h.chunk.doc_id for h in hits}
        if isinstance(found, Answer):
            docs |= {c.doc_id for c in found.citations}
        return self._fresh.is_current(docs)

    @_consistent
    def retrieve(self, question: str, k: int | None = None,
                 doc_ids: Iterable[str] | None = None) -> list[Hit]:
        """The top `k` passages for `question` (within `doc_ids`, if given), each with its
        best sentence."""
        text = clean_question(question)
        k = check_k(self.settings.k if k is None else k)
        index = self.index
        if not index.documents:  # an empty library: nothing to search, no model to load
            self.searchable(index, doc_ids)  # an unknown id is still named
            return []
        query = Query.of(text, index=index, words=self.words())
        return retrieve(index, self.embedder, query, k, self.weights,
                        self.searchable(index, doc_ids))

    def retrieve_with_index(self, question: str, k: int | None = None,
                            doc_ids: Iterable[str] | None = None) -> tuple[list[Hit], Index]:
        """`retrieve`, and the index the hits came from: see `ask_with_index`."""
        return self._with_index(lambda: self.retrieve(question, k, doc_ids))

    @_consistent
    def _with_index(self, call: Callable[[], R]) -> tuple[R, Index]:
        """`call()` (an `ask` or `retrieve`) and the index it used: one pin for both, and
        the whole call made again, on a fresh index, if a quoted file changed under it."""
        return call(), self.index

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Index]:
        """One index for several calls in this thread: `with pipeline.pinned() as index:`
        retrieve, then look up the titles of the hits' documents in the same `index`, even
        if another thread adds or removes documents (swaps the index) meanwhile."""
        if getattr(self._pinned, "active", False):
            yield self.index
            return
        if self._watching:
            self.refresh()
        with self._pin():
            yield self.index

    @contextlib.contextmanager
    def _pin(self) -> Iterator[None]:
        """Within it, this thread's calls see one index: the first one `index` returns."""
        self._pinned.active, self._pinned.index = True, None  # pinned on first use
        try:
            yield
        finally:
            self._pinned.active, self._pinned.index = False, None

    def analyze(self, question: str) -> QuestionInfo:
        """The question's expected answer type, entities and negation (spaCy)."""
        return self.analyzer.question(question)

    def evidence(
        self, question: str, history: Sequence[str | Turn] = (), k: int | None = None,
        doc_ids: Iterable[str] | None = None,
    ) -> Evidence | None:
        """Search for `question` (with the previous turn when it needs it) and check what
        was found against it; None when nothing was found. Costs one embedding call."""
        text = clean_question(question)
        k = check_k(self.settings.k if k is None else k)
        turns = check_history(history)
        # Without history the question alone is embedded: start it now, on a helper thread,
        # so the model runs (outside the GIL) while spaCy parses the question here.
        embedding = None if turns else self._embedding_pool.submit(self.embedder.embed, [text])
        info = self.analyze(text)
        check_content(text, info)
        index = self.index
        allowed = self.searchable(index, doc_ids)  # a bad doc_ids fails before the search
        follow_up = bool(turns) and (info.refers_back or not info.has_subject)
        context = ""
        if follow_up:
            # A pronoun that stands for what the previous question named is replaced by it,
            # and the question is answered on its own ("How long does it take?" after "What
            # is the Porridge program for?"); otherwise the earlier turn joins the search.
            # A bare question word ("Where?") asks the previous question's again ("Where
            # will the meeting be held?" after "When will the meeting be held?").
            said = turns[-1].answer
            again = ask_again(text, turns[-1].question)
            asked_again = again != text
            if asked_again:
                text, info = again, self.analyze(again)
            resolved = resolve(info, self.analyze(turns[-1].question),
                               said is not None and found_nothing(said))
            if resolved != text:
                info, follow_up = self.analyze(resolved), False
            elif asked_again and not info.refers_back:
                follow_up = False  # asked again whole: it stands alone
            else:
                if turns[-1].answer is None:  # only the question was given (CLI --history,
                    # Python): its answer is what the conversation was about. One level: the
                    # earlier question is answered on its own.
                    try:
                        said = self.ask(turns[-1].question, (), k, doc_ids).text
                    except BadQuestion:  # "?", "👍": it asked nothing, so it adds nothing
                        said = None  # (it refused every later question of the chat)
                    turns[-1] = Turn(turns[-1].question, said)
                if turns[-1].answer is None:
                    follow_up = False
                elif found_nothing(turns[-1].answer):  # what it quoted is only the closest
                    context = turns[-1].question
                else:
                    context = f"{turns[-1].question} {turns[-1].answer}".strip()
        query = Query.of(info.text, context, CONTEXT_WEIGHT, index=index, words=self.words())
        if context:  # one batch: the question, and the earlier turn at a lower weight
            vectors = self.embedder.embed([text, context])
            vector = vectors[0] + CONTEXT_WEIGHT * vectors[1]
            vector = vector / np.linalg.norm(vector)
        else:
            vector = (embedding.result() if embedding else self.embedder.embed([info.text]))[0]
        hits, scored = search(index, vector, query, k, self.weights, allowed)
        if not hits:
            return None
        first = None
        if context:
            said = turns[-1].answer
            quoted = set() if said is None or found_nothing(said) else quoted_sentences(
                index, hits, said)
            first = follow_up_sentence(index, hits, vectors[0], tokenize(text), quoted,
                                       self.weights.sentence_lexical)
        return gather_evidence(index, info, hits, scored, query.expansions, follow_up, first)

    @_consistent
    def ask(
        self, question: str, history: Sequence[str | Turn] = (), k: int | None = None,
        doc_ids: Iterable[str] | None = None,
    ) -> Answer:
        """A cited answer to `question`, or an honest abstention.

        `history` holds the earlier turns, oldest first: questions, or `Turn`s with the
        answers given (a follow-up whose pronoun names the previous question's subject is asked
        in its standalone form; any other is searched with the previous question and answer).
        `doc_ids` limits the answer to those documents."""
        text = clean_question(question)
        if not self.index.documents:  # answered before any model loads
            self.searchable(self.index, doc_ids)  # an unknown id is still named
            check_k(self.settings.k if k is None else k)
            check_history(history)
            return Answer(text, EMPTY_LIBRARY, True, 0.0)
        evidence = self.evidence(question, history, k, doc_ids)
        if evidence is None:
            return Answer(text, "The documents hold nothing to search.", True, 0.0)
        # A resolved follow-up was searched as its standalone form; the answer is to what
        # was asked, and says how it was read.
        answer = compose(evidence)
        read_as = answer.question if answer.question != text else None
        return dataclasses.replace(answer, question=text, read_as=read_as)

    def ask_with_index(
        self, question: str, history: Sequence[str | Turn] = (), k: int | None = None,
        doc_ids: Iterable[str] | None = None,
    ) -> tuple[Answer, Index]:
        """`ask`, and the index the answer came from: the one to look its citations up in
        (titles, pages, the text around a quote), even if an upload, a removal or a changed
        file swaps `index` before the caller reads it. Unlike `ask` inside `pinned()`, the
        answer is still checked against its files and made again if one changed."""
        return self._with_index(lambda: self.ask(question, history, k, doc_ids))

    # -- documents (the data folder; see qa.loaders.library) ---------------------------------

    def _reload(self, change: str, empty_ok: bool = False) -> Index:
        """The index after a change of documents (`change`: "adding x, y"), built at once and
        said so: the change is this process's own, not a stale index ('the documents
        changed since the index was built (x); rebuilding the index' on every add). Built
        outside `_lock` (callers hold `_docs_lock`), so questions are answered from the
        current index while a large upload is embedded, and only the swap waits. `empty_ok`:
        the change removed the last readable document (the library may be empty)."""
        log(f"updating the index: {change}")
        index = self._open(rebuild=True, empty_ok=empty_ok)
        with self._lock:
            self._install(index)
        return index

    def add_documents(
        self, paths: Sequence[str | Path] | str | Path, names: Sequence[str] | None = None,
        on_error: Callable[[str, BadDocument], None] | None = None,
        capped: bool = True,
    ) -> list[Document]:
        """Check, store (atomically, in the data folder) and index new documents.

        A bad file, or one whose text a document already has (409), raises `BadDocument`
        before anything is written, unless `on_error` is given: then it is reported there
        and the others are added. So does (413) one whose text would bring the call's over
        `settings.max_upload_chars`, unless `capped` is False (`qa add`, a local command
        with a progress bar and Ctrl-C). If the index update fails, the new files are
        removed again and the index is as before. A file the update skipped after all (a
        seed file with its text was indexed meanwhile, by another process) is refused the
        same way (409), after the update: removed again, and the index updated without it.
        """
        from qa.loaders import BadDocument
        from qa.loaders import library as lib

        if isinstance(paths, str | Path):  # one file, not one path per character
            paths = [paths]
        if not isinstance(paths, Iterable):
            raise BadDocument(f"paths must be a list of file paths, got {paths!r:.80}")
        paths = list(paths)
        if not all(isinstance(p, str | os.PathLike) for p in paths):
            raise BadDocument(f"paths must be a list of file paths, got {paths!r:.80}")
        if names is not None and len(names) != len(paths):
            raise BadDocument(f"names must give one name per path: {len(names)} names for "
                              f"{len(paths)} paths")
        prepared: list[Prepared] = []
        cap = self.settings.max_upload_chars if capped else None
        for i, path in enumerate(paths):
            name = names[i] if names is not None else None
            try:
                item = lib.prepare(Path(path), name, self.settings.max_upload_bytes, cap,
                                   lib.UPLOAD_CAP)
                if cap is not None:  # the cap is on one upload's work: all its files
                    lib.check_total(item, sum(len(p.extracted.text) for p in prepared), cap)
                prepared.append(item)
            except BadDocument as exc:
                if on_error is None:
                    raise
                on_error(str(name or path), exc)
        if not prepared:
            return []
        with self._docs_lock, _not_when_stopping("not added"):
            self._build_stop.check()
            try:
                current: Index | None = self.index
            except NothingToIndex:  # no readable document yet: the first added builds it
                current = None
            indexed = ({d.text_sha256: d.id for d in current.manifest_record.documents}
                       if current is not None else {})
            data = lib.check_data_dir(self.settings)
            with lib.data_lock(data):
                lib.sweep(data, committed_by(self.settings))
                new = []
                refusals = lib.copies(self.settings, prepared, indexed)
                for item, refusal in zip(prepared, refusals, strict=True):
                    if refusal is None:
                        new.append(item)
                    elif on_error is None:
                        raise refusal
                    else:
                        on_error(item.called, refusal)
                if not new:
                    return []
                taken = lib.seed_ids(self.settings.seeds_dir, sticky_ids(
                    self.settings, current.manifest_record) if current is not None else None)
                # nor an id the committed index gives a document: a seed file deleted by
                # hand since keeps its id until the next build retires it
                on_disk = committed(self.settings)
                if on_disk is not None:
                    taken |= set(on_disk.seeds.values()) | on_disk.uploads \
                        | {i for i, _ in on_disk.indexed}
                ids = lib.commit(self.settings, new, taken)
                try:
                    index = self._reload(f"adding {', '.join(ids)}")
                    lost = {i: self._not_indexed(index, i, item)
                            for i, item in zip(ids, new, strict=True)
                            if not self._indexed_upload(index, i)}
                    if lost:  # a seed file came meanwhile with its text: refused after all
                        lib.discard(self.settings, ids if on_error is None else list(lost))
                        index = self._reload(f"leaving out {', '.join(lost)}", empty_ok=True)
                        for item, refusal in lost.values():
                            if on_error is None:
                                raise refusal
                            on_error(item.called, refusal)
                        ids = [i for i in ids if i not in lost]
                except BaseException:
                    lib.discard(self.settings, ids)
                    raise
                lib.confirm(self.settings, ids)
                self._fresh.data_seen()  # its own change: installed already
        return [index.documents[i] for i in ids]

    def _indexed_upload(self, index: Index, doc_id: str) -> bool:
        """Is `doc_id` in `index` as the upload of that id (not a seed file that took it)?"""
        return doc_id in index.documents and Path(index.info(doc_id).path).parent == \
            self.settings.documents_dir / doc_id

    def _not_indexed(self, index: Index, doc_id: str, item: Prepared
                     ) -> tuple[Prepared, BadDocument]:
        """Why the build skipped the upload `doc_id` just stored, as a refusal like those of
        `copies`: a seed file with its text came after they were looked for (or changed to
        it), and the document indexed before stays."""
        from qa.loaders import BadDocument
        from qa.loaders import library as lib

        sha = lib.text_sha256(item.extracted.text)
        holder = next((d.id for d in index.manifest_record.documents if d.text_sha256 == sha),
                      None)
        if holder is not None:
            return item, BadDocument(f"{item.called}: the same text as the "
                                     f"document {holder!r}; not added again", status=409)
        folder = str(self.settings.documents_dir / doc_id)
        reason = next((p.reason for p in index.manifest_record.problems if p.file == folder),
                      "the index skipped it")
        return item, BadDocument(f"{item.called}: {reason}; not added", status=409)

    def remove_documents(self, doc_ids: Sequence[str] | str,
                         on_error: Callable[[str, QAError], None] | None = None) -> list[str]:
        """Remove uploaded documents and update the index once; seeds cannot be removed (the
        last document can: the library is then empty, and questions say so). If
        the update fails, the documents are put back. An unknown id or a seed raises before
        anything changes, unless `on_error` is given: then it is reported there and the
        others are removed. Returns the ids removed."""
        from qa.loaders import library as lib

        if isinstance(doc_ids, str):
            doc_ids = [doc_ids]
        ids = list(doc_ids) if isinstance(doc_ids, Iterable) else None
        if ids is None or not all(isinstance(d, str) for d in ids):
            raise lib.UnknownDocument(
                f"doc_ids must be a list of document ids, got {doc_ids!r:.80}", 422)
        doc_ids = ids
        wanted = list(dict.fromkeys(doc_ids))
        with self._docs_lock, _not_when_stopping("not removed"):
            self._build_stop.check()
            try:
                index: Index | None = self.index
            except NothingToIndex:  # no file can be read: removing one may be the fix
                index = None
            # seed documents only: an upload named like a seed file's stem is no seed
            seeds = lib.seed_ids(self.settings.seeds_dir, self._sticky_ids()
                                 if index is not None else None, stems=False)
            for doc_id in list(wanted):
                if doc_id not in seeds:
                    continue
                if index is None or doc_id in index.documents:
                    refusal = lib.UnknownDocument(
                        f"{quoted(doc_id)} is a shipped seed document: it cannot be removed", 409)
                elif not (self.settings.documents_dir / doc_id).is_dir():  # not an upload
                    refusal = lib.UnknownDocument(
                        f"{quoted(doc_id)} is a file of the seeds folder that was not indexed (qa "
                        "list says why): qa removes uploads only; fix or delete the file "
                        "itself", 409)
                else:
                    continue
                if on_error is None:
                    raise refusal
                on_error(doc_id, refusal)
                wanted.remove(doc_id)
            data = lib.check_data_dir(self.settings)
            with lib.data_lock(data):
                # another process's add or removal killed mid-way: settled before this
                # one's rebuild could index or drop its document as new or changed
                lib.settle(data, committed_by(self.settings))
                moves: list[tuple[Path, Path]] = []
                for doc_id in list(wanted):
                    try:
                        moves += lib.withdraw(self.settings, [doc_id])
                    except lib.UnknownDocument as exc:
                        if on_error is None:
                            lib.undo(moves)
                            raise
                        on_error(doc_id, exc)
                        wanted.remove(doc_id)
                    except BaseException:  # cannot be moved (permissions): none is removed
                        lib.undo(moves)
                        raise
                if not moves:
                    return []
                try:
                    self._reload(f"removing {', '.join(wanted)}", empty_ok=True)
                except BaseException:
                    lib.undo(moves)
                    raise
                lib.finish(moves)
                self._fresh.data_seen()
        return wanted

    def _sticky_ids(self) -> PreviousIds:
        """The ids the loaded index gave its files: seed files keep theirs (`seed_files`)."""
        return sticky_ids(self.settings, self.index.manifest_record)

    def list_documents(self) -> list[Entry]:
        """Every indexed document with its metadata (seeds and uploads), in index order,
        from what the build recorded: no document's text is read or decoded."""
        return self._entries(self.index)

    def problems(self) -> list[Problem]:
        """Files the index's build skipped, with the reason (kept in its manifest, so a
        command that finds the index fresh reports them without re-reading any file)."""
        return self._problems(self.index)

    def library(self) -> tuple[list[Entry], list[Problem]]:
        """`list_documents()` and `problems()` of one index: an upload or a removal may
        swap the index between two calls (a document both listed and skipped, or neither)."""
        index = self.index
        return self._entries(index), self._problems(index)

    def _entries(self, index: Index) -> list[Entry]:
        from qa.loaders import library as lib

        return [lib.entry(self.settings, index.info(d), index.listed(d)) for d in index.documents]

    @staticmethod
    def _problems(index: Index) -> list[Problem]:
        from qa.loaders import library as lib

        return [lib.Problem(p.file, p.reason) for p in index.manifest_record.problems]


@contextlib.contextmanager
def _not_when_stopping(what: str) -> Iterator[None]:
    """A build stopped by `stop_indexing` names what it was for: the document was `what`."""
    try:
        yield
    except ShuttingDown:
        raise ShuttingDown(f"the server is shutting down; the document was {what}") from None


_default: Pipeline | None = None
_default_lock = threading.Lock()


def default_pipeline() -> Pipeline:
    """The process-wide pipeline built from the environment's settings."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline()
        return _default

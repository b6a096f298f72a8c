"""Fit the abstention model on the development set and write src/qa/abstention.json.

    python scripts/fit_abstention.py [tests/data/dev_questions.jsonl]

Each dev question gives one example: the features of the best evidence qa finds for it,
labelled 1 if the question is answerable from the documents and 0 if not. A logistic
regression (plain gradient descent, light L2) turns features into a probability. The
threshold maximizes (share of unanswerable questions abstained on) minus three times (share of
answerable questions wrongly refused): refusing a question the document answers costs
more than answering one it does not, since every answer shows its quoted source. The whole
trade-off curve and the chosen point are printed; the rates are stored beside the weights.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from qa.answering import FEATURES, gather
from qa.evaluation import contains_gold
from qa.pipeline import Pipeline
from qa.types import Turn

WRONG_ABSTAIN_COST = 3.0


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/dev_questions.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    pipeline = Pipeline()
    X, y, good = [], [], []
    for row in rows:
        history = [Turn(q) for q in row.get("history") or []]
        evidence = gather(pipeline, row["question"], history, 5)
        assert evidence is not None
        X.append([evidence.features[f] for f in FEATURES])
        y.append(1.0 if row["answers"] else 0.0)
        good.append(1.0 if contains_gold(evidence.top[0].text, row["answers"]) else 0.0)
    features, labels, targets = np.array(X), np.array(y), np.array(good)

    w = np.zeros(len(FEATURES))
    for _ in range(20000):
        p = 1 / (1 + np.exp(-features @ w))
        grad = features.T @ (p - targets) / len(targets) + 0.001 * np.r_[w[:-1], 0.0]
        w -= 0.5 * grad
    p = 1 / (1 + np.exp(-features @ w))

    answerable, unanswerable = p[labels == 1], p[labels == 0]
    for t in np.linspace(0.1, 0.9, 17):
        print(f"  t={t:.2f} wrongly abstained {np.mean(answerable < t):.1%}, "
              f"abstained on unanswerable {np.mean(unanswerable < t):.1%}")
    def gain(t: float) -> float:
        return float(np.mean(unanswerable < t) - WRONG_ABSTAIN_COST * np.mean(answerable < t))

    candidates = sorted(set(np.round(p, 4)) | {0.0})
    best = max(gain(t) for t in candidates)
    # Of the thresholds that tie, take the middle of the widest run: the least fragile.
    tied = [t for t in candidates if gain(t) == best]
    threshold = float(tied[len(tied) // 2])
    wrong = float(np.mean(answerable < threshold))
    right = float(np.mean(unanswerable < threshold))
    print(f"dev examples: {len(labels)} ({int(labels.sum())} answerable)")
    print("weights:", dict(zip(FEATURES, np.round(w, 3), strict=True)))
    print(f"threshold {threshold:.4f}: wrongly abstained {wrong:.1%} of answerable, "
          f"abstained on {right:.1%} of unanswerable")
    model = {
        "weights": {f: round(float(v), 4) for f, v in zip(FEATURES, w, strict=True)},
        "threshold": round(threshold, 4),
        "fitted_on": str(path),
        "dev": {"wrongly_abstained": round(wrong, 4), "abstained_unanswerable": round(right, 4),
                "examples": len(labels)},
    }
    out = Path(__file__).resolve().parents[1] / "src" / "qa" / "abstention.json"
    out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

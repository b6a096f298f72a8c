"""Fit the sentence ranker, then the answer and lead models, on a pool of documents of
several kinds; write src/qa/sentence_ranker.json and src/qa/answer_model.json.

    python scripts/fit_answer_model.py [--work DIR] [--per-article N]

Pool (fitting): the article's development set (tests/data/dev_questions.jsonl), six of the
SQuAD 2.0 *train* articles of ../shared/data (Zelda, with human-written unanswerable
questions, among them), and the manual and report of eval/docs. Held out (never fitted;
measure on them with `qa eval`): four SQuAD train articles (Spectre, the other one with
unanswerable questions, New York City, To Kill a Mockingbird, Solar energy), the story of
eval/docs, and the article's shipped test set eval/article_qa.jsonl. Each fitting source is
also asked 30 answerable questions of the other fitting sources, as unanswerable ones
(people ask about what their documents never cover; see cross_examples). `--from-dump` refits
from the examples a previous run wrote, in seconds; `--keep-ranker` refits the answer and
lead models only, `--ranker-only` the ranker only (`--candidates N`: for the N best retrieved
of the candidates collected; `--without-held-squad`: skip the held-out SQuAD articles).

The ranker is fitted first, on every candidate sentence of every answerable fitting
question (label: the sentence holds a gold answer); the pool is then collected again, in
the new ranker's order, for the two other models (their features are those of the sentence
the ranker puts first). Each question gives one example of the answer model: the features
of the best candidate sentence, labelled 1 when the question is answerable and a gold answer
is in that sentence.
The first lead span of the best sentence of an answerable question gives one example of the
lead model, labelled 1 when its SQuAD token F1 against a gold answer is at least 0.5; among
its features is the answer model's out-of-fold probability for the sentence (stacking). Both
are logistic regressions (scikit-learn) on standardised features; the answer model's
examples are weighted so that each source counts alike, the lead model's are not (SQuAD
gives nearly all lead examples; see main). Thresholds are chosen on out-of-fold
predictions (folds = documents): the answer threshold maximises (unanswerable abstained)
− 2 × (answerable wrongly abstained), averaged over the sources that have unanswerable
questions; the lead threshold is the lowest whose out-of-fold precision is at least 0.90
(or the most precise one that still shows 5% of leads).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.answering import LEAD_FEATURES, lead_options, with_answer_p
from qa.config import Settings
from qa.evaluation import LEAD_RIGHT_F1, contains_gold, token_f1
from qa.evidence import CANDIDATES, FEATURES
from qa.pipeline import Pipeline
from qa.ranking import SIGNALS, Forest, default_ranker, ranking_matrix
from qa.testset import parse_squad
from qa.types import Turn

if TYPE_CHECKING:  # scikit-learn is imported where it fits: the tests of the cut need none
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad2-train-10-articles.json"
# Only Zelda (4) and Spectre (5) hold unanswerable questions: one is fitted, one held out.
HELD_SQUAD = (5, 7, 8, 9)
WRONG_ABSTAIN_COST = 2.0
CROSS_QUESTIONS = 30  # questions of the other sources asked of each fitting source
LEAD_PRECISION = 0.90
MIN_LEADS_SHOWN = 0.05  # a lead threshold must still show this share of lead options: under
# ~50 of the ~950, its precision is noise (0.90 at 2% shown, 0.82 at 1%, 0.87 around 10%)
RANKER_TREES = 100


def squad_sets(work: Path, per_article: int, seed: int = 0) -> dict[str, tuple[Path, list]]:
    """One seeds folder with every SQuAD article, and the questions of each article: the
    articles' text and questions as `qa eval` reads them (`qa.testset.parse_squad`)."""
    articles, items, _ = parse_squad(json.loads(SQUAD.read_text(encoding="utf-8")))
    seeds = work / "squad-seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out = {}
    for number, article in enumerate(articles):
        name = f"squad-{number:02d}-" + re.sub(r"\W+", "-", article.title).strip("-").lower()
        (seeds / f"{name}.txt").write_text(article.text(), encoding="utf-8")
        rows = [{"id": item.id, "question": item.question, "answers": list(item.answers)}
                for item in items if item.where.startswith(f"data[{number}].")]
        unanswerable = [r for r in rows if not r["answers"]]
        answerable = [r for r in rows if r["answers"]]
        rng.shuffle(answerable)
        keep = unanswerable + answerable[: max(per_article - len(unanswerable), per_article // 2)]
        out[name] = (seeds, keep)
    return out


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def examples(pipeline: Pipeline, rows: list[dict], source: str, group: str) -> list[dict]:
    """One record per question: its candidates' texts, features, ranker inputs, whether each
    holds a gold answer, and the lead option of the first two (JSON)."""
    out = []
    for row in rows:
        history = [Turn(q) for q in row.get("history") or []]
        evidence = pipeline.evidence(row["question"], history)
        if evidence is None or not evidence.candidates:
            continue
        out.append({
            "source": source, "group": group, "question": row["question"],
            "golds": row["answers"], "wants": list(evidence.question.wants),
            "cands": [{"text": c.sentence.text, "score": c.score, "features": c.features,
                       "ranking": list(c.ranking),
                       "gold": bool(row["answers"]) and contains_gold(c.sentence.text,
                                                                      row["answers"]),
                       "leads": [{"text": span.text, "features": f}
                                 for span, f in lead_options(c, evidence)[:1]] if n < 2 else []}
                      for n, c in enumerate(evidence.candidates)],
        })
    return out


def collect(work: Path, per_article: int, dump: str = "examples.json",
            cross: bool = True, held_squad: bool = True) -> list[dict]:
    """Run the evidence step over every pool (without the held-out SQuAD articles unless
    `held_squad`); the examples are written to WORK/`dump`."""
    rows: list[dict] = []
    pipes = {"article": Pipeline(Settings(seeds_dir=ROOT / "seeds",
                                          index_dir=work / "article-index"))}
    questions = {"article": jsonl(ROOT / "tests/data/dev_questions.jsonl")}
    rows += examples(pipes["article"], questions["article"], "article", "article")
    for name in ("manual", "report", "story"):
        pipes[name] = Pipeline(Settings(seeds_dir=ROOT / "eval/docs" / name,
                                        index_dir=work / f"{name}-index"))
        questions[name] = jsonl(ROOT / f"eval/{name}_qa.jsonl")
        rows += examples(pipes[name], questions[name], name, name)
        print(f"{name}: done", file=sys.stderr)
    sets = squad_sets(work, per_article)
    pipes["squad"] = Pipeline(Settings(seeds_dir=next(iter(sets.values()))[0],
                                       index_dir=work / "squad-index"))
    questions["squad"] = []
    for name, (_, asked) in sets.items():
        if held_out(name) and not held_squad:
            continue
        rows += examples(pipes["squad"], asked, "squad", name)
        if not held_out(name):
            questions["squad"] += asked
        print(f"{name}: done", file=sys.stderr)
    if cross:
        rows += cross_examples(pipes, questions)
    (work / dump).write_text(json.dumps(rows), encoding="utf-8")
    return rows


def cross_examples(pipes: dict[str, Pipeline], questions: dict[str, list[dict]]) -> list[dict]:
    """Questions about other documents, asked of each fitting source: unanswerable there.

    People ask about things their documents never cover; the human-written unanswerable
    questions of the pool are all near their document's topic, so without these the model
    never sees an off-topic question. The held-out story is neither asked nor asked of.
    """
    rng = random.Random(1)
    fitting = [s for s in questions if s != "story"]
    pools = {s: [r for r in questions[s] if r["answers"] and not r.get("history")]
             for s in fitting}
    for pool in pools.values():
        rng.shuffle(pool)
    out = []
    for target in fitting:
        others = [s for s in fitting if s != target]
        asked = [dict(r, answers=[]) for s in others
                 for r in pools[s][: CROSS_QUESTIONS // len(others)]]
        out += examples(pipes[target], asked, target, f"{target}-cross")
    return out


def held_out(group: str) -> bool:
    """Never fitted: the story, four SQuAD articles (the article's shipped test set is not
    collected at all)."""
    return group == "story" or any(group.startswith(f"squad-{n:02d}") for n in HELD_SQUAD)


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[LogisticRegression, np.ndarray,
                                                               np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit((x - mean) / scale, y, sample_weight=w)
    return model, mean, scale


def oof(x: np.ndarray, y: np.ndarray, w: np.ndarray, groups: list[str]) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    out = np.zeros(len(y))
    folds = GroupKFold(n_splits=min(5, len(set(groups))))
    for train, test in folds.split(x, y, groups):
        model, mean, scale = fit(x[train], y[train], w[train])
        out[test] = model.predict_proba((x[test] - mean) / scale)[:, 1]
    return out


def fit_ranker(rows: list[dict], candidates: int = CANDIDATES) -> dict:
    """The sentence ranker: gradient-boosted trees on the candidates of the answerable
    fitting questions that have a gold-holding candidate (label: the sentence holds a gold
    answer), each question's candidates cut to the `candidates` of highest retrieval score
    (the evidence step's own cut; the rows are collected with `qa.evidence.CANDIDATES`).
    Reports top-1 on every group, fitted (out of fold, folds = documents) and held out,
    against the order it replaces (retrieval order plus bonuses) and the shipped ranker (in
    sample on the fitted groups)."""
    from sklearn.model_selection import GroupKFold

    for e in rows:  # a sentence quoted as continuing the best one was not ranked
        e["cands"] = _cut([c for c in e["cands"] if c["ranking"]], candidates)
    fitting = [e for e in rows if not held_out(e["group"]) and e["golds"]
               and any(c["gold"] for c in e["cands"])]
    x = np.array([c["ranking"] for e in fitting for c in e["cands"]])
    y = np.array([int(c["gold"]) for e in fitting for c in e["cands"]])
    question = np.array([n for n, e in enumerate(fitting) for _ in e["cands"]])
    out_of_fold = np.zeros(len(y))
    groups = [e["group"] for e in fitting for _ in e["cands"]]
    for train, test in GroupKFold(n_splits=min(5, len(set(groups)))).split(x, y, groups):
        out_of_fold[test] = _forest(x[train], y[train]).predict_proba(x[test])[:, 1]
    oof_top = {}
    for n, e in enumerate(fitting):
        p = out_of_fold[question == n]
        oof_top[id(e)] = int(e["cands"][int(np.argmax(p))]["gold"])
    model = _forest(x, y)
    data = {"trees": [_tree(predictor.nodes) for (predictor,) in model._predictors],
            "baseline": float(model._baseline_prediction.ravel()[0])}
    forest = Forest.of(data)  # the exported trees reproduce scikit-learn's scores
    assert np.allclose(forest.logits(x), model.decision_function(x), atol=1e-9)
    shipped = default_ranker()
    by_group: dict[str, list[tuple[int, ...]]] = {}
    for e in rows:
        if not e["golds"] or not e["cands"]:
            continue
        rank_x = np.array([c["ranking"] for c in e["cands"]])
        p = forest.probability(rank_x)
        old = shipped.probability(rank_x)
        canonical = min(range(len(e["cands"])), key=lambda i: _canonical_rank(e["cands"][i]))
        held = held_out(e["group"])
        kind = ("held " if held else "fit ") + (
            "squad" if e["source"] == "squad" else e["group"])
        new = int(e["cands"][int(np.argmax(p))]["gold"]) if held else oof_top.get(id(e), 0)
        by_group.setdefault(kind, []).append(
            (int(any(c["gold"] for c in e["cands"])), int(e["cands"][canonical]["gold"]),
             int(e["cands"][int(np.argmax(old))]["gold"]), new))
    print(f"{candidates} candidates; share of answerable questions whose first candidate "
          "holds a gold: gold among them | retrieval order | shipped ranker | new ranker "
          "(fit: out of fold)")
    for kind, values in sorted(by_group.items()):
        among, before, old_top, after = np.mean(values, axis=0)
        print(f"  {kind}: {among:.3f} | {before:.3f} | {old_top:.3f} | {after:.3f} "
              f"({len(values)} questions)")
    return data


def _cut(cands: list[dict], candidates: int) -> list[dict]:
    """The `candidates` of highest retrieval score (signal 0, the evidence step's cut), with
    their ranker inputs computed again among themselves, in the order the evidence step
    ranks them in (prose first, then by score: ties in rank go by it). Rows as collected
    when nothing is cut: they are the evidence step's own."""
    if len(cands) <= candidates:
        return cands
    keep = sorted(range(len(cands)), key=lambda i: -cands[i]["ranking"][0])[:candidates]
    kept = sorted((cands[i] for i in keep), key=_canonical_rank)
    matrix = ranking_matrix([c["ranking"][:len(SIGNALS)] for c in kept])
    return [dict(c, ranking=row) for c, row in zip(kept, matrix.tolist(), strict=True)]


def _forest(x: np.ndarray, y: np.ndarray) -> HistGradientBoostingClassifier:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=RANKER_TREES, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40,
        early_stopping=False, random_state=0).fit(x, y)


def _canonical_rank(candidate: dict) -> tuple[float, float]:
    """A candidate's place in the order the ranker replaces: prose before headings, then by
    retrieval score plus bonuses."""
    return (candidate["ranking"][SIGNALS.index("heading")], -candidate["score"])


def _tree(nodes: np.ndarray) -> dict:
    return {"feature": [int(v) for v in nodes["feature_idx"]],
            "threshold": [float(v) for v in nodes["num_threshold"]],
            "left": [int(v) for v in nodes["left"]], "right": [int(v) for v in nodes["right"]],
            "leaf": [bool(v) for v in nodes["is_leaf"]],
            "value": [float(v) for v in nodes["value"]]}


def weights(sources: list[str]) -> np.ndarray:
    counts = Counter(sources)
    return np.array([len(sources) / (len(counts) * counts[s]) for s in sources])


def logistic(model: LogisticRegression, mean: np.ndarray, scale: np.ndarray,
             names: tuple[str, ...], threshold: float) -> dict:
    return {"features": list(names), "mean": [round(float(v), 6) for v in mean],
            "scale": [round(float(v), 6) for v in scale],
            "weights": [round(float(v), 6) for v in model.coef_[0]],
            "bias": round(float(model.intercept_[0]), 6), "threshold": round(threshold, 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/qa-fit")
    parser.add_argument("--per-article", type=int, default=260)
    parser.add_argument("--from-dump", action="store_true",
                        help="refit from WORK/examples.json instead of running the pipeline")
    parser.add_argument("--keep-ranker", action="store_true",
                        help="refit the answer and lead models only, with the shipped ranker")
    parser.add_argument("--ranker-only", action="store_true",
                        help="refit the sentence ranker only, keeping the answer and lead models")
    parser.add_argument("--without-held-squad", action="store_true",
                        help="do not run the held-out SQuAD articles (no held-out figures)")
    parser.add_argument("--candidates", type=int, default=CANDIDATES,
                        help="fit the ranker for this many candidates (at most the "
                             "qa.evidence.CANDIDATES the rows were collected with)")
    args = parser.parse_args()
    work = Path(args.work)
    ranker_out = ROOT / "src" / "qa" / "sentence_ranker.json"
    if not args.keep_ranker:
        if args.from_dump:
            ranked = json.loads((work / "ranker_examples.json").read_text(encoding="utf-8"))
        else:  # every question of the fitting articles: the ranker sees each candidate
            ranked = collect(work, 100_000, "ranker_examples.json", cross=False,
                             held_squad=not args.without_held_squad)
        ranker_out.write_text(json.dumps(fit_ranker(ranked, args.candidates)) + "\n",
                              encoding="utf-8")
        default_ranker.cache_clear()
    if args.ranker_only:
        return
    if args.from_dump:  # (collected with the ranker of that run)
        every = json.loads((work / "examples.json").read_text(encoding="utf-8"))
    else:  # the answer and lead models see the candidates in the new ranker's order
        every = collect(work, args.per_article)
    rows = [e for e in every if not held_out(e["group"])]

    # -- answer model: is the top sentence an answer (the question answerable, a gold in it)?
    x = np.array([[e["cands"][0]["features"][f] for f in FEATURES] for e in rows])
    y = np.array([int(bool(e["golds"]) and contains_gold(e["cands"][0]["text"], e["golds"]))
                  for e in rows])
    sources = [e["source"] for e in rows]
    w = weights(sources)
    p = oof(x, y, w, [e["group"] for e in rows])
    answerable = np.array([bool(e["golds"]) for e in rows])
    src = np.array(sources)

    def gain(t: float) -> float:  # per source, then averaged: no source dominates
        values = []
        for s in sorted(set(src)):
            a, u = (src == s) & answerable, (src == s) & ~answerable
            if u.any():
                values.append(float(np.mean(p[u] < t)
                                    - WRONG_ABSTAIN_COST * np.mean(p[a] < t)))
        return float(np.mean(values))

    grid = np.round(np.linspace(0.05, 0.95, 91), 3)
    threshold = float(max(grid, key=gain))
    model, mean, scale = fit(x, y, w)
    print("answer weights:", dict(zip(FEATURES, np.round(model.coef_[0], 3), strict=True)))
    print(f"answer threshold {threshold} (out-of-fold gain {gain(threshold):.3f})")

    # -- lead model: is the first lead option of the top sentence a right short answer?
    # Its `answer_p` is the answer model's out-of-fold probability for the sentence (at run
    # time: the fitted model's). Not weighted by source: the few dozen leads of the small
    # sources, weighted like the ~1,500 of SQuAD, made the model learn their noise (held-out
    # precision flat at ~0.7 whatever the threshold).
    leads = [(e, with_answer_p(e["cands"][0]["leads"][0]["features"], float(p[i])),
              e["cands"][0]["leads"][0]["text"])
             for i, e in enumerate(rows) if e["golds"] and e["cands"][0]["leads"]]
    lx = np.array([[features[f] for f in LEAD_FEATURES] for _, features, _ in leads])
    ly = np.array([int(token_f1(text, e["golds"]) >= LEAD_RIGHT_F1) for e, _, text in leads])
    lw = np.ones(len(leads))
    lp = oof(lx, ly, lw, [e["group"] for e, _, _ in leads])
    lead_threshold, best = 0.99, 0.0
    for t in np.round(np.linspace(0.3, 0.98, 69), 3):
        shown = lp >= t
        if shown.mean() < MIN_LEADS_SHOWN:
            break
        precision = float(ly[shown].mean())
        if precision >= LEAD_PRECISION:
            lead_threshold = float(t)
            break
        if precision > best:  # the most precise threshold, if none reaches the goal
            lead_threshold, best = float(t), precision
    lmodel, lmean, lscale = fit(lx, ly, lw)
    shown = lp >= lead_threshold
    print(f"lead threshold {lead_threshold}: out-of-fold precision "
          f"{ly[shown].mean() if shown.any() else 0:.3f}, shown for {shown.mean():.1%} "
          f"of {len(ly)} lead options ({ly.mean():.1%} of them right)")

    data = {
        "answer": logistic(model, mean, scale, FEATURES, threshold),
        "lead": logistic(lmodel, lmean, lscale, LEAD_FEATURES, lead_threshold),
        "fitted_on": {"examples": dict(Counter(sources)),
                      "held_out": ["SQuAD 2.0 train articles 6, 8-10 (Spectre, New York City, "
                                   "To Kill a Mockingbird, Solar energy)", "eval/docs/story",
                                   "eval/article_qa.jsonl"]},
        "out_of_fold": {"answer_gain": round(gain(threshold), 4),
                        "lead_precision": round(float(ly[shown].mean()) if shown.any() else 0, 4),
                        "lead_shown": round(float(shown.mean()), 4)},
    }
    out = ROOT / "src" / "qa" / "answer_model.json"
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}; measure it with qa eval on the held-out sets (eval/README.md)")


if __name__ == "__main__":
    main()

"""Benchmarks of qa (issue 6): `python -m benchmarks [--quick] [--sections ...]`.

Five sections, each runnable alone: qa against the LangChain tutorial pipeline in one
process (latency, build time, retrieval quality) with the embedding floor; cold start of
`qa ask` and `qa serve`; ANN and BM25 scaling on synthetic corpora; HTTP load on
`/api/ask`. Results print as one table and, for a full run, land in `benchmarks/results.md`.
"""

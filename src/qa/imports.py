"""One lock for the imports that may load torch.

A cold start loads spaCy and the embedding model on different threads. spaCy is imported
with torch hidden (`qa.nlp`: its thinc layer would import torch for nothing), and that
hiding is process-wide: a thread importing torch meanwhile (sentence-transformers, `qa.bert`,
the ONNX export) would find it missing, and transformers remembers that ("PyTorch was not
found", then `NameError: name 'nn' is not defined`). Both sides take this lock.
"""

from __future__ import annotations

import threading

TORCH_IMPORTS = threading.RLock()

"""The web chat and the HTTP API as one app: `python app.py`, or `uvicorn app:app`.

In: QA_HOST and QA_PORT (default 127.0.0.1:7860) and the usual QA_* settings. Out: a server
with the chat at `/`, the JSON API under `/api/` and its docs at `/docs`. Importing this
module builds the app after the checks `qa serve` makes (the folders, spaCy, and the index
folder's claim: a refusal is one line and exit 2); the model and index load when the server
starts. Beyond loopback without QA_API_TOKEN every request is refused (`qa.api.Hardening`).
"""

from __future__ import annotations

import os
import sys

from qa.api import create_app, private_upload_folder, run
from qa.errors import BadSetting, QAError
from qa.pipeline import default_pipeline, preflight
from qa.store import claim_index

pipeline = default_pipeline()
try:  # what `qa serve` checks before anything loads: uvicorn imports this, and runs no check
    preflight(pipeline.settings)
    claim_index(pipeline.settings)  # another process on the index reads the same folders
except QAError as exc:
    print(f"qa: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
private_upload_folder()  # Gradio's uploads: this server's own folder, removed on shutdown
app = create_app(pipeline)


def _port(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise BadSetting(f"QA_PORT must be an integer, got {raw!r}") from None


if __name__ == "__main__":
    try:
        run(app, os.environ.get("QA_HOST") or "127.0.0.1",
            _port(os.environ.get("QA_PORT") or "7860"))
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)

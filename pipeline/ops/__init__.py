"""Operations: what those who run the pipeline all day need beside it.

* ``metrics``: Prometheus metrics and ``/healthz`` for ``invoices watch`` and ``invoices ingest``;
* ``alerts``: a command or a webhook per failed file, for sites without Prometheus;
* ``verify``: the store's integrity check (originals against their ids, results, pages, index);
* ``backup``: incremental copies of a store (content-addressed keys) and restores from them.

Everything here reads and updates the store and index through their public methods. See
docs/OPERATIONS.md.
"""

from __future__ import annotations

# Objects the /healthz probe writes and deletes again; never part of a backup or a check.
HEALTH_KEY_PREFIX = "_health/"

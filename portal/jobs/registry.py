"""Which job function runs which kind of run (used to start and to resume runs)."""

from __future__ import annotations

from portal.models import RunKind

JOBS: dict[RunKind, tuple[str, str]] = {
    RunKind.SELF_CHECK: ("portal.jobs.selfcheck.run_self_check", "default"),
    RunKind.REFERENCE_REFRESH: ("portal.jobs.reference.refresh_reference", "sync"),
    RunKind.MAPPING_SCAN: ("portal.jobs.mapping.scan_mappings", "sync"),
    RunKind.BATCH: ("portal.jobs.batch.post_batch", "sync"),
}


def enqueue_run(kind: RunKind, run_id: int) -> None:
    from portal import jobs

    func, queue = JOBS[kind]
    jobs.enqueue(func, run_id, queue=queue)

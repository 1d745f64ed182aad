"""Which job function runs which kind of run (used to start and to resume runs)."""

from __future__ import annotations

from portal.models import RunKind

JOBS: dict[RunKind, tuple[str, str]] = {
    RunKind.SELF_CHECK: ("portal.jobs.selfcheck.run_self_check", "default"),
    RunKind.REFERENCE_REFRESH: ("portal.jobs.reference.refresh_reference", "sync"),
    RunKind.MAPPING_SCAN: ("portal.jobs.mapping.scan_mappings", "sync"),
    RunKind.BATCH: ("portal.jobs.batch.post_batch", "sync"),
    RunKind.UNBATCH: ("portal.jobs.unbatch.unbatch", "sync"),
    RunKind.CLEAR: ("portal.jobs.unbatch.clear", "sync"),
    RunKind.VALIDATION: ("portal.jobs.unbatch.validate", "sync"),
    RunKind.PAYMENT_SYNC: ("portal.jobs.payments.sync_payments", "sync"),
}
MARKER_TTL = 7 * 86400


def job_marker(run_id: int) -> str:
    """The Redis key naming the newest job enqueued for a run (the reconciler asks RQ
    whether it still waits, so it never piles up copies behind a busy worker)."""
    return f"portal:run-job:{run_id}"


def enqueue_run(kind: RunKind, run_id: int) -> None:
    from portal import jobs

    func, queue = JOBS[kind]
    job = jobs.enqueue(func, run_id, queue=queue)
    jobs.get_redis().set(job_marker(run_id), job.id, ex=MARKER_TTL)

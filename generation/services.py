"""Every change to jobs: submission and each state change after it, by the names callers use.

The rules live in modules by concern, so that no module imports back the one that enqueues
the worker's task: generation.submission counts, checks, charges and enqueues run_job;
generation.lifecycle makes each state change after it, with its side effects;
generation.pipeline is what run_job does. Callers outside those modules import them here.
"""

from generation.lifecycle import (
    ErrorCode,
    cancel_job,
    complete_job,
    delete_expired_images,
    fail_job,
    reap_stuck_jobs,
    report_progress,
    take_turn,
)
from generation.pricing import request_cost
from generation.requests import GenerationRequest
from generation.submission import Estimate, estimate, moderate_prompt, submit, submit_job

__all__ = [
    "ErrorCode",
    "Estimate",
    "GenerationRequest",
    "cancel_job",
    "complete_job",
    "delete_expired_images",
    "estimate",
    "fail_job",
    "moderate_prompt",
    "reap_stuck_jobs",
    "report_progress",
    "request_cost",
    "submit",
    "submit_job",
    "take_turn",
]

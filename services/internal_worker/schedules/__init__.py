"""Schedule specs for the scheduler system workflow: Temporal's calendar, cron and interval semantics, sans-IO."""

from .spec import (
    CompiledSpec,
    ComputeLimitExceeded,
    NextTime,
    canonicalize,
    compile_spec,
    describe_form,
    jitter_seed,
    matching_times,
)

__all__ = [
    "CompiledSpec",
    "ComputeLimitExceeded",
    "NextTime",
    "canonicalize",
    "compile_spec",
    "describe_form",
    "jitter_seed",
    "matching_times",
]

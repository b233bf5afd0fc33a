"""Batch operations as a system workflow: ``StartBatchOperation`` starts one workflow per job that applies one
public RPC (terminate, cancel, signal, delete, reset, update options, unpause activities) to every run a query or
a list selects, at a rate limit, resumable after any crash (progress lives in the activity's heartbeat)."""

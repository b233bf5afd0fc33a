"""History RPC implementations, one module per RPC."""

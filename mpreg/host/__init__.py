"""Host and process plumbing: node processes, per-host state, config files."""

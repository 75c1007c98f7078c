"""The wire: frames, typed messages, the codec and the handshake. Sans-IO."""

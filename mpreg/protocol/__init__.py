"""The wire: frames, typed messages, the codec and the handshake. Sans-IO."""

# Registered here so their wire ids are known before the first message is decoded.
from mpreg.protocol import admin as admin

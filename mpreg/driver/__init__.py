"""The driver side: what runs in the user's process (clients, planner, the mpreg.* calls)."""

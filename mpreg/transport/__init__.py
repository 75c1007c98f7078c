"""asyncio TCP connections speaking the mpreg protocol."""

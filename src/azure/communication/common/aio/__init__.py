"""The asyncio flavour of :mod:`azure.communication.common` (same names, awaitable methods)."""

__all__: list[str] = []

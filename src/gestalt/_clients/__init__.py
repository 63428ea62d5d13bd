"""Clients of the host's services (Cache, IndexedDB, S3) and what they share.

``transport`` finds a service's address and relay token in the environment and keeps one
channel per target; ``errors`` is the error tree every client raises. Each service has one
module or family of modules here; its sync and asyncio classes share one source.

May import: ``gestalt.gen`` only (and each other). Nothing here knows about providers.
"""

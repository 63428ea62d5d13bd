"""Small provider modules for the runtime tests.

The tests launch them as the host does, with this folder as ``ROOT`` (so each file is imported
as a top-level module, e.g. ``async_kinds:cache``); they are never imported by the tests.
Provider methods print ``CALL ...`` lines on stderr so a test can read what was called.
"""

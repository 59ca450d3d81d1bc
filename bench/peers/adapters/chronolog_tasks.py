"""Chronolog python-job functions (``adapters.chronolog_tasks:<name>``).

Imported by Chronolog's prefork children: the worker is started from the harness
directory with it on PYTHONPATH, and children inherit the worker's sys.path.
"""
import asyncio
import time


def noop():
    return 1


def stamp():
    return time.monotonic()


def sleep(seconds):
    t = time.monotonic()
    time.sleep(seconds)
    return [t, time.monotonic()]


async def async_noop():
    return 1


async def async_stamp():
    return time.monotonic()


async def async_sleep(seconds):
    """The sleep job as a coroutine: Chronolog runs thousands of these per worker process."""
    t = time.monotonic()
    await asyncio.sleep(seconds)
    return [t, time.monotonic()]

"""Prometheus metrics of every role.

``metrics.hooks`` is what the hot paths call (cheap observations, no I/O); it depends on
nothing, so worker, scheduler, projector and event log code can hold one. The Prometheus
side (``metrics.prometheus``: the instruments; ``metrics.state``: gauges read at scrape
time; ``metrics.exposition``: rendering, the multiprocess directory of ``chronolog up``
and the ``--metrics-port`` server) is loaded only where metrics are on.
"""

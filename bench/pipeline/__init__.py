"""Parts of ``bench/bench_pipeline.py`` (the end-to-end benchmark, issue 16).

``stats`` is pure (percentiles, tick latencies from the commit log, the kept-up verdict, the
result document's keys and table); ``procs`` measures processes; ``stack`` starts the pipeline
the way the local stack runs it; ``probes`` watches it (commit log, WebSocket client, backlog);
``baseline`` is the schwab-py one-INSERT-per-tick pipeline; ``plot`` draws the PNG.
"""

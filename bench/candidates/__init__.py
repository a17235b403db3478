"""The programs the end-to-end benchmark times, each run as its own process by bench.run.

Each reads its configuration from BENCH_* environment variables and writes `BENCH first <t>`
(to the BENCH_MARKERS file) when it handles its first record and `BENCH last <t>` when it has handled BENCH_EXPECT records
(t = time.time()), so the runner can time the processing window. `common` is stdlib-only: the
Quix Streams candidate runs in a separate virtualenv.
"""

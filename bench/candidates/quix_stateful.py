"""The same stateful pass-through in Quix Streams: state per key = the last value, nothing sent.

Runs in its own virtualenv (quixstreams pins pydantic<2.14 and pydantic-settings<2.16, older
than the processor's), so it imports nothing from the project but bench.candidates.common.
Memory store (BENCH_STORE=memory://, changelog topic kept, as Faust's) or RocksDB.
"""

from __future__ import annotations

import logging
from typing import Any

from quixstreams import Application, State
from quixstreams.state.memory import MemoryStore
from quixstreams.state.rocksdb import RocksDBStore

from bench.candidates.common import Marker, env


def main() -> None:
    app = Application(
        broker_address=env("BENCH_BOOTSTRAP"),
        consumer_group=env("BENCH_GROUP"),
        auto_offset_reset="earliest",
        state_dir=env("BENCH_DATA_DIR"),
        loglevel=logging.INFO,
        processing_guarantee="at-least-once",
    )
    topic = app.topic(env("BENCH_INPUT"), key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(topic)
    store = MemoryStore if env("BENCH_STORE", "memory://") == "memory://" else RocksDBStore
    sdf.register_store(store_type=store)
    marker = Marker()

    def keep_last(value: Any, state: State) -> None:
        marker.seen()
        state.set("last", value.decode())  # JSON-serialized by Quix: text, not bytes

    sdf.update(keep_last, stateful=True)
    app.run()


if __name__ == "__main__":
    main()

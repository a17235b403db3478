"""The Python limit: a raw aiokafka consume-and-produce loop, no framework.

getmany -> orjson.loads each value -> produce one small JSON output per input (same key) ->
wait for the acks -> commit the batch's offsets. acks=all like the processor's producer.
"""

from __future__ import annotations

import asyncio
import signal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.candidates.common import Marker, env


async def run() -> None:
    bootstrap = env("BENCH_BOOTSTRAP")
    output = env("BENCH_OUTPUT")
    consumer = AIOKafkaConsumer(
        env("BENCH_INPUT"),
        bootstrap_servers=bootstrap,
        group_id=env("BENCH_GROUP"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    marker = Marker()
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            if not batches:
                continue
            acks = []
            n = 0
            for records in batches.values():
                for record in records:
                    marker.start()
                    event = orjson.loads(record.value)
                    out = orjson.dumps({"id": event["id"], "subject": event["subject"],
                                        "type": event["type"], "seen": record.offset})  # fmt: skip
                    acks.append(await producer.send(output, out, key=record.key))
                    n += 1
            await asyncio.gather(*acks)
            await consumer.commit()
            marker.seen(n)
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(run())

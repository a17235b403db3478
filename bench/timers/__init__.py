"""Timer benchmark of the processor against a real Kafka broker (design: bench/timers.md).

    python -m bench.timers [--quick] [--out bench/results/] [--bootstrap HOST:PORT]
        [--sections precision,warnings,burst,recovery] [--tickets 100000,1000000]
        [--store rocksdb://]

1. Precision: a worker holding N open tickets (100k, 1M) fires D deadlines spread uniformly
   over a window W while ordinary events (bench/workload.py's ticket mix) are ingested at about
   1,000/s. Lateness of each timer output = its Kafka timestamp (CreateTime: when the processor
   sent it) minus its due instant (the output's `time`). `warnings`: the same runs measuring
   the sla.warning a 50 % warning rule for low tickets emits 4 h before the breach.
2. Burst: B deadlines due at the same instant T0: T0 to the first and to the last output, outputs
   per second, and the latency of probe events (one urgent ticket.opened every 100 ms) meanwhile.
3. Recovery: a worker holding 1M tickets is stopped (SIGTERM, or SIGKILL) with K deadlines due
   while it is down, and restarted on the same group (and data dir); spawn to Ready, to the first
   processed event, and to the last overdue output; index rebuild time; RSS after recovery.

Each run is a real `python -m processor worker` (processor.spawn.WorkerProcess) on its own
bench-<id> topics, deleted afterwards. State is loaded two ways, both recorded in the results: tickets
whose deadlines are measured are produced as ticket.opened events and processed by the worker
(the realistic path); bulk tickets whose deadlines lie hours ahead are written straight into the
tickets table's changelog, byte for byte what the worker would have written
(`codec.encode_state` of `engine.decide` on the same ticket.opened event, with its next deadline
and the policy's fingerprint as the worker stores it, keyed by the subject's
bytes, partition = murmur2(subject)), and the worker restores them at start-up; a sample is then
checked through the worker's /tickets/{id} view.

Starts its own broker (deploy/kafka/kafka.sh, port 29092, var/kafka-timers) unless --bootstrap is
given, and stops it at the end. Writes <out>/timers.json and <out>/timers.md (--quick:
timers-quick.*, small sizes, one run each: a smoke check, not figures).
"""

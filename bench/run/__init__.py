"""End-to-end benchmark of the processor against a real Kafka broker.

    python -m bench.run [--quick] [--out bench/results/] [--bootstrap HOST:PORT]

1. Throughput: N generated ticket events (bench/engine.py's mix, valid CloudEvents keyed by
   subject, 4 partitions) are produced BEFORE a candidate starts; the candidate is then started
   as a fresh consumer group and timed until its committed offsets reach the end offsets.
   Candidates: the processor (memory and rocksdb), a bare Faust agent with and without a table,
   a raw aiokafka loop, Quix Streams; then the processor with Faust tuning knobs.
2. Memory per open ticket: worker RSS after N ticket.opened events minus RSS with none, / N.
3. Profile: py-spy over one processor throughput run; the top functions.

Starts its own broker (deploy/kafka/kafka.sh, port 49092, var/kafka-bench) unless --bootstrap
is given, and stops it at the end. Writes <out>/processor.json and <out>/processor.md
(--quick: processor-quick.*, small sizes, one run each: a smoke check, not figures).
"""

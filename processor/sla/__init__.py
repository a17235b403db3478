"""The pure SLA core: policy, ticket state machine, deadlines, classification and maintenance rules; no I/O, no clock."""

"""Event-driven SLA stream processor: a pure SLA core (`processor.sla`) inside Faust and replay shells."""

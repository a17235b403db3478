"""The HTTP ingest: CloudEvents over HTTP and the help desks' webhooks, published to the input
topics (`sla-processor ingest`, a process of its own beside the workers)."""


class IngestConfigError(ValueError):
    """The ingest cannot start as configured (a mapping file, the token file); the message names
    the file and the field, never a token."""

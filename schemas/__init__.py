"""Wire formats: CloudEvents 1.0 models of every topic, parsed once at the edge."""

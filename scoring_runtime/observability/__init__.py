"""Log lines in the reference's format or as JSON, the access log, and the Prometheus metrics of every worker."""

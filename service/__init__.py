"""HTTP serving of sciner models: a BentoML service (``service.app:SciNER``) with adaptive
batching, registry-alias polling with hot swap, readiness and Prometheus metrics."""

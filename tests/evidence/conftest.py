from tests.executor.conftest import ledger, runtime, sources, worker

__all__ = ["ledger", "runtime", "sources", "worker"]

"""The store's error, shared by ``indexer.store`` and the engines under it (``indexer.edge``)."""


class StoreError(RuntimeError):
    """The vector store cannot be used as asked (locked, unreachable, missing or mismatched collection)."""

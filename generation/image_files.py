"""Writing a job's image files to the configured storage (local disk or a bucket)."""

from django.core.files.storage import default_storage


def store_at(path: str, content) -> str:
    """Store `content` at exactly `path`, replacing a file already there (a redelivered job
    renders the same bytes again; the disk backend would otherwise save under another
    name); return the path stored."""
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, content)

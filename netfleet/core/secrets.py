"""Local secrets generated on first run, kept in the data dir (git-ignored), never hard-coded."""

import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

SECRETS_FILE_NAME = "secrets.json"


def load_or_create_local_secrets(data_dir: Path) -> dict:
    """Return {"secret_key", "secret_keys"} from DATA_DIR/secrets.json, creating it atomically when missing.

    Two processes starting at once both try an exclusive create; the loser reads the winner's file.
    """
    path = Path(data_dir) / SECRETS_FILE_NAME
    if not path.exists():
        generated = {"secret_key": secrets.token_urlsafe(50), "secret_keys": [Fernet.generate_key().decode()]}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(generated, handle)
                handle.flush()
                os.fsync(handle.fileno())
            return generated
    for _ in range(50):  # the creator may still be writing
        content = path.read_text()
        if content:
            return json.loads(content)
        import time

        time.sleep(0.05)
    raise RuntimeError(f"{path} is empty")

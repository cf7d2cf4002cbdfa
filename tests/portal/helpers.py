"""A Django process of its own whose database is a port where nothing listens."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def without_a_database(script: str, var_dir: Path, **env: str) -> tuple[dict, str]:
    """Run `script` in that process; returns the JSON object it printed last, and all it
    printed."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:9/unreachable",
            "CELERY_BROKER_URL": "memory://",
            "GATEHOUSE_VAR_DIR": str(var_dir),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout

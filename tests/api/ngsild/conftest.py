"""NGSI-LD tests: the helper module beside them is importable (tests are not a package)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

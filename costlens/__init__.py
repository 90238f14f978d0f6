"""costlens: know exactly what LLM chat traffic costs, and what it would cost on another model.

The package is a library first; ``costlens.cli`` is a thin Click layer over it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from costlens.errors import (
    AlreadyReplayedError,
    ConfigError,
    CostlensError,
    InputError,
    PricingError,
    StoreError,
    StoreLockedError,
)

__all__ = [
    "AlreadyReplayedError",
    "ConfigError",
    "CostlensError",
    "InputError",
    "PricingError",
    "StoreError",
    "StoreLockedError",
    "__version__",
]

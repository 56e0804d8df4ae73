"""bvsim: a bias-variance Monte Carlo simulator for weight decay (and friends).

Data flows one way: config -> data -> engine -> estimators -> tables -> figures/report.

>>> import bvsim
>>> cfg = bvsim.load_config(preset="smoke")
>>> result = bvsim.run_sweep(cfg)           # doctest: +SKIP
>>> result.summary[["weight_decay", "bias2", "variance"]]   # doctest: +SKIP
"""

__version__ = "0.1.0"

from .api import RunResult, run_sweep  # noqa: E402
from .config import Config, ConfigError, list_presets, load_config  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "RunResult",
    "__version__",
    "list_presets",
    "load_config",
    "run_sweep",
]

"""bvsim: a bias-variance Monte Carlo simulator for weight decay (and friends).

Layers, each importing only from those before it: _version -> config -> estimate ->
task -> data -> train -> run -> io -> present -> api -> cli (see README, Layout).

>>> import bvsim
>>> cfg = bvsim.load_config(preset="smoke")
>>> result = bvsim.run_sweep(cfg)           # doctest: +SKIP
>>> result.summary[["weight_decay", "bias2", "variance"]]   # doctest: +SKIP
"""

from ._version import __version__  # noqa: E402
from .api import RunResult, load_config, run_sweep  # noqa: E402
from .config import BvsimWarning, Config, ConfigError, list_presets  # noqa: E402

__all__ = [
    "BvsimWarning",
    "Config",
    "ConfigError",
    "RunResult",
    "__version__",
    "list_presets",
    "load_config",
    "run_sweep",
]

"""Reading a configuration: presets, TOML files and ``--set`` overrides merged, checked
against the schema (:mod:`bvsim.config.schema`) and across keys
(:mod:`bvsim.config.checks`).

Unknown keys, wrong types and bad values raise :class:`ConfigError` before any compute,
naming the file, the key, the value and what is allowed. Checks that read the user's
files or run the user's code belong to the parts that own them (the CSV source, the
truth function, the module and estimator trainers); :func:`load_config` takes them as
``check_user_code`` (the public :func:`bvsim.load_config` passes them), so this
package imports nothing above it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from .axis import axis_configs
from .checks import check_consistency, check_crossed_n_reps, resolve_design
from .dump import plain_value, text_key
from .moot import drop_moot_keys
from .plugins import absolute
from .schema import SECTIONS, Config, ConfigError, mark_user_code_checked, user_code_checked

__all__ = ["check_key", "from_dict", "list_presets", "load_config"]


# --- parsing --------------------------------------------------------------------------


def _suggest(name, options):
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(where, value, kind):
    """Return ``value`` as ``kind`` or raise ConfigError naming ``where``."""

    def bad(expected):
        return ConfigError(f"{where} = {value!r}: expected {expected}")

    value = plain_value(value)  # from the Python API: numpy's values as Python's
    if isinstance(value, tuple):
        value = list(value)

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad("an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        value = float(value) + 0.0  # -0.0 as 0.0 (a grid's λ = -0 is λ = 0)
        if not math.isfinite(value):
            beyond = " (a number beyond ±1.8e308 reads as inf)" if math.isinf(value) else ""
            raise bad(f"a finite number, not {value}{beyond}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise bad("a table, e.g. {fit_intercept = false}")
        value = {k: plain_value(v) for k, v in value.items()}
        for k, v in value.items():
            if not isinstance(v, bool | int | float | str):
                raise ConfigError(f"{where}.{k} = {v!r}: expected a number, string or boolean")
        return dict(value)
    if kind in ("float_list", "int_list", "str_list"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise bad("a list")
        inner = kind.removesuffix("_list")
        return [_coerce(where, v, inner) for v in value]
    raise AssertionError(kind)


def _build(cls, raw, prefix, section=""):
    """Build dataclass ``cls`` (table ``section``, or the top level) from dict ``raw``;
    ``prefix`` (the source) starts messages."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in SECTIONS}
    where = f"{prefix}{section}." if section else prefix
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            dotted = f"{section}.{key}" if section else repr(key)
            raise ConfigError(
                f"{prefix}unknown key {dotted}{_suggest(key, fields)}; allowed"
                f"{f' in [{section}]' if section else ''}: {', '.join(fields)}"
            )
        meta = fields[key].metadata
        value = _coerce(f"{where}{key}", value, meta["kind"])
        check = meta["check"]
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{where}{key} = {value!r}: {problem}")
        kwargs[key] = value
    return cls(**kwargs)


def check_key(key: str, value, prefix: str = ""):
    """``value`` of the dotted ``key`` as a configuration reads it (its type, then its
    schema check), or the ConfigError a file would give, after ``prefix``: for a value
    that comes from elsewhere than a file or ``--set`` (the CLI's ``--target-se``)."""
    section, name = key.split(".")
    return getattr(_build(SECTIONS[section], {name: value}, prefix, section), name)


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _parse_value(text, kind=None):
    """Parse the right-hand side of ``--set key=value`` as TOML, else (a bare word) as a
    string. For a string key (``kind`` 'str'), an unquoted number, boolean or date is
    its text too (``--set name=123`` is the name '123')."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    if kind == "str" and not isinstance(value, str | list | dict):
        return text
    return value


def _override(raw, assignment):
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) == 1:
        top = [f.name for f in dataclasses.fields(Config) if f.name not in SECTIONS]
        if parts[0] in SECTIONS:
            names = [f.name for f in dataclasses.fields(SECTIONS[parts[0]])]
            raise ConfigError(
                f"--set {key}: [{parts[0]}] is a section, not a key; set one of its keys "
                f"with --set {parts[0]}.KEY=VALUE (keys: {', '.join(names)})"
            )
        if parts[0] not in top:
            raise ConfigError(
                f"--set {key}: unknown key{_suggest(parts[0], top + list(SECTIONS))}; "
                f"top-level keys: {', '.join(top)}; others are section.key"
            )
        field = next(f for f in dataclasses.fields(Config) if f.name == parts[0])
        return _merge(raw, {parts[0]: _parse_value(text.strip(), field.metadata["kind"])})
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise ConfigError(
            f"--set {key}: unknown section{_suggest(parts[0], SECTIONS)}; "
            f"sections: {', '.join(SECTIONS)}"
        )
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[parts[0]])}
    if parts[1] not in fields:
        raise ConfigError(
            f"--set {key}: unknown key{_suggest(parts[1], fields)}; "
            f"[{parts[0]}] keys: {', '.join(fields)}"
        )
    kind = fields[parts[1]].metadata["kind"]
    return _merge(raw, {parts[0]: {parts[1]: _parse_value(text.strip(), kind)}})


def _read_toml(path: Path, label: str) -> dict:
    """A TOML file: UTF-8 (a leading byte-order mark is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        hint = ""
        if not path.suffix and path.name in list_presets():  # load_config("smoke")
            hint = f" (for the preset, write preset={path.name!r} or --preset {path.name})"
        raise ConfigError(f"{label}: file not found{hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a directory, expected a .toml file") from None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise ConfigError(
            f"{label}: not UTF-8 text (byte {err.start}{', a UTF-16 file' if utf16 else ''}); "
            "a TOML file must be saved as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{label}: malformed TOML: {err}") from None


def list_presets() -> list[str]:
    """Names of the presets shipped inside the package."""
    files = resources.files("bvsim").joinpath("presets").iterdir()
    return sorted(p.name.removesuffix(".toml") for p in files if p.name.endswith(".toml"))


def _preset_raw(name: str) -> dict:
    presets = list_presets()
    if name not in presets:
        raise ConfigError(
            f"unknown preset {name!r}{_suggest(name, presets)}; presets: {', '.join(presets)}"
        )
    text = resources.files("bvsim").joinpath("presets", f"{name}.toml").read_text()
    return tomllib.loads(text)


#: Checks that read the user's files or run the user's code: ``(cfg, prefix) -> cfg``
#: (the CSV source may fill in defaults, e.g. its columns), marked with the digests of
#: the files they read (:func:`bvsim.config.schema.mark_user_code_checked`).
UserCodeCheck = Callable[[Config, str], Config]


def from_dict(
    raw: dict,
    source: str = "config",
    check_user_code: UserCodeCheck | None = None,
    user_raw: dict | None = None,
) -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`.

    ``check_user_code(cfg, prefix)``, when given, checks what the configuration names
    outside itself (see the module docstring), after the cross-key checks, and the
    result is marked checked with the digests of the files it read
    (:func:`bvsim.config.schema.mark_user_code_checked`; none noted: checked again by a
    sweep where it names a file).
    Without it (the default) those checks are left to :func:`bvsim.run_sweep`, which
    runs them before any compute on a configuration not marked checked; reading a
    run's ``config.toml`` for its keys (:func:`bvsim.io.rundir.stored_keys`) imports
    nothing.
    ``user_raw`` is the part of ``raw`` the user wrote (file and ``--set``, not the
    preset; default: all of ``raw``), for
    :func:`bvsim.config.checks.check_crossed_n_reps` and
    :func:`bvsim.config.moot.drop_moot_keys` (a key without effect is refused where the
    user set it, put back to its default where the preset did)."""
    prefix = f"{source}: " if source else ""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{prefix}expected a table of sections (a dict), not {type(raw).__name__}"
        )
    top_fields = {f.name: f for f in dataclasses.fields(Config) if f.name not in SECTIONS}
    allowed = list(top_fields) + list(SECTIONS)
    top, sections = {}, {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ConfigError(f"{prefix}key {key!r}: keys are names (str)")
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}[{key}] must be a table")
            sections[key] = _build(SECTIONS[key], value, prefix, key)
        elif key in top_fields:
            top[key] = value
        else:
            raise ConfigError(
                f"{prefix}unknown section or key {key!r}{_suggest(key, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
    base = _build(Config, top, prefix)
    cfg = resolve_design(dataclasses.replace(base, **sections), prefix)
    user_raw = raw if user_raw is None else user_raw
    check_crossed_n_reps(cfg, user_raw, prefix)
    check_consistency(cfg, prefix)
    cleaned = drop_moot_keys(cfg, [sub for _, sub in axis_configs(cfg)], user_raw, prefix)
    if cleaned != cfg:  # a preset's key put back to its default
        cfg = cleaned
        check_consistency(cfg, prefix)
    if check_user_code is None:
        return _absolute_paths(cfg)
    checked = check_user_code(cfg, prefix)  # marked with the digests of what it read
    return mark_user_code_checked(_absolute_paths(checked), user_code_checked(checked) or {})


#: Keys naming a file: a data file, or a plugin spec ('file.py:name' names one).
PATH_KEYS = (("data", "path"), ("data", "truth"), ("model", "module"), ("model", "estimator"))


def _absolute_path(key: str, value: str, base: Path | None = None) -> str:
    """A path-valued key's ``value`` with a relative file path made absolute against
    ``base`` (default: the current directory)."""
    if key != "path":
        return absolute(value, base)
    if not value or value.startswith("bvsim-data:") or Path(value).expanduser().is_absolute():
        return value
    return str(((base or Path()) / Path(value).expanduser()).resolve())


def _anchor_paths(raw: dict, base: Path) -> dict:
    """The keys of TOML file ``raw`` with relative file paths made absolute against
    ``base``, the file's directory (where a path written in a file is read from)."""
    out = dict(raw)
    for section, key in PATH_KEYS:
        table = out.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            out[section] = {**table, key: _absolute_path(key, table[key], base)}
    return out


def _absolute_paths(cfg: Config) -> Config:
    """Relative file paths (data.path, data.truth, model.module, model.estimator; those of
    a file were made absolute against its directory already) made absolute against the
    current directory, so the saved config.toml names the same files from any
    directory."""
    d, m = cfg.data, cfg.model
    data = dataclasses.replace(
        d, path=_absolute_path("path", d.path), truth=_absolute_path("truth", d.truth)
    )
    model = dataclasses.replace(
        m,
        module=_absolute_path("module", m.module),
        estimator=_absolute_path("estimator", m.estimator),
    )
    return dataclasses.replace(cfg, data=data, model=model)


def _saved_by_a_run(path: Path) -> bool:
    """Whether ``path`` is a run directory's ``config.toml`` (beside the run's
    ``run.json`` or ``chunks/``) as bvsim wrote it: where ``run.json`` records the
    configuration's key (``config_key``), the file's text must still have it, so a
    key the user edited in is the user's (refused where it has no effect), not
    bvsim's (put back to its default). A run without that record is taken as written."""
    folder = path.absolute().parent
    if path.name != "config.toml":
        return False
    record = folder / "run.json"
    if record.is_file():
        try:
            recorded = json.loads(record.read_text()).get("config_key")
            text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
        except (OSError, ValueError, AttributeError):
            return True  # unreadable: judged by what it says, as before
        return not recorded or text_key(text) == recorded
    return (folder / "chunks").is_dir()


def load_config(
    path: str | Path | None = None,
    *,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    check_user_code: UserCodeCheck | None = None,
) -> Config:
    """Load a configuration: preset (base), then file, then ``--set`` overrides.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file. Keys it sets override the preset's. Relative file paths in it
        (data.path, and 'file.py:name' in data.truth, model.module, model.estimator)
        are read from its directory; those of ``overrides`` and of :func:`from_dict`
        from the current directory.
    preset : str, optional
        Name of a shipped preset (see :func:`list_presets`).
    overrides : list of str
        ``"section.key=value"`` assignments, value parsed as TOML (bare words are
        strings, as is an unquoted number, boolean or date given to a string key).
    check_user_code : callable, optional
        Checks of the files and code the configuration names (see
        :func:`from_dict`); :func:`bvsim.load_config` passes them.

    Raises
    ------
    ConfigError
        On any unknown key, wrong type or bad value, before anything is computed.
    """
    raw: dict = {}
    user: dict = {}  # the keys the file and --set give, not the preset
    source = "config"
    if preset is not None:
        raw = _preset_raw(preset)
        source = f"preset {preset!r}"
    if path is not None:
        user = _read_toml(Path(path), str(path))
        # a relative path in the file is read from the file's directory
        user = _anchor_paths(user, Path(path).absolute().parent)
        raw = _merge(raw, user)
        source = str(path)
        if _saved_by_a_run(Path(path)):
            # bvsim wrote it: its keys are the run's, not the user's, so a key it holds
            # without effect (written by a bvsim before config.moot) is put back to its
            # default like a preset's instead of refusing the run's own Reproduce command
            user = {}
    if isinstance(overrides, Mapping):  # its keys alone would read as assignments
        raise TypeError(
            f"overrides = {overrides!r:.80}: a mapping; give a list of 'KEY=VALUE' strings, "
            "e.g. [f'{k}={v}' for k, v in overrides.items()]"
        )
    if not isinstance(overrides, str | bytes):
        overrides = list(overrides or ())
    if isinstance(overrides, str | bytes) or not all(isinstance(a, str) for a in overrides):
        raise TypeError(
            f"overrides = {overrides!r:.80}: expected a list of 'KEY=VALUE' strings, "
            "e.g. ['sweep.n_reps=4']"
        )
    for assignment in overrides:
        raw = _override(raw, assignment)
        user = _override(user, assignment)
    if overrides:
        source += " with --set (overrides)"
    return from_dict(raw, source, check_user_code, user_raw=user)

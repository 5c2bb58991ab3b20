"""Settings for the pytest plugin and the CLI, read from the project's config files.

Where settings come from, weakest first (each later source overrides the keys it sets):

1. built-in defaults (the fields of :class:`Settings`);
2. the config file: ``[tool.robustest]`` in ``pyproject.toml`` and/or ``robustest.yaml`` beside it
   (when both exist, ``robustest.yaml`` wins key by key);
3. the selected profile: ``--robust-profile NAME``, else the ``ROBUSTEST_PROFILE`` environment variable,
   else ``profile = "NAME"`` in the file. The built-in
   profiles ``ci`` and ``nightly`` can be extended or overridden by the file's own profiles;
4. the command line (``--robust-seed``, ``--robust-timeout``, ...);
5. the arguments of a test's ``@robust(...)`` marker (applied by the plugin, not here).

A file looks like::

    [tool.robustest]            # pyproject.toml
    seed = 1
    timeout = 5.0
    [tool.robustest.profiles.nightly]
    escalate = "crown"
    timeout = 60.0

    # robustest.yaml
    seed: 1
    profiles:
      ci: {junit: robustness.xml, junit_include: failures}

Keys may be written with ``-`` or ``_``. Unknown keys or profiles raise :class:`ConfigError` naming the
key, the file and the valid choices. This module imports no torch (the plugin loads it at start-up).

    >>> from robustest.settings import load_settings
    >>> load_settings(".", profile="ci").timeout            # doctest: +SKIP
    5.0
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ._options import problem
from .errors import ConfigError


PYPROJECT = "pyproject.toml"
#: the environment variable that selects a profile (as HYPOTHESIS_PROFILE does): beats the file's
#: ``profile`` key, loses to ``--robust-profile``
PROFILE_ENV = "ROBUSTEST_PROFILE"
YAML_FILE = "robustest.yaml"


@dataclass(frozen=True)
class Settings:
    """Run-wide defaults for robustness checks and their reporting.

    ``seed`` is the base seed (each test derives its own from it and its node id); ``timeout`` is the
    per-sample budget in seconds; ``escalate`` the highest rung of the ladder; ``require`` and
    ``min_pass`` the default pass criterion of a test; ``unknown`` how unknown samples appear in the
    per-sample JUnit file; ``junit`` its path (None: not written); ``junit_include`` which samples it
    lists; ``html`` the path of the HTML report (None: not written); ``repair`` a directory where failing
    marker tests get a repaired model (None: off); ``suppress_health_check`` names of health checks to
    silence (see :mod:`robustest.checks`); ``cache`` the verdict cache's mode (off, read, write,
    readwrite: in ``.robustest_cache/`` of the rootdir) or its own directory (:mod:`robustest.cache`);
    ``shards`` how many items a ``@robust`` test runs as under pytest-xdist ("auto": one per worker);
    ``json`` the path of the results file (``robustest report --merge`` reads it); ``baseline`` a
    baseline file to compare every sample with, and ``baseline_tolerance`` the relative drop of a
    certified margin it tolerates.
    """

    seed: int = 0
    timeout: float = 10.0
    escalate: str = "attack"
    require: str = "not_falsified"
    min_pass: float = 1.0
    unknown: str = "skipped"
    junit: Optional[str] = None
    junit_include: str = "all"
    html: Optional[str] = None
    repair: Optional[str] = None
    suppress_health_check: Tuple[str, ...] = ()
    profile: Optional[str] = None
    cache: str = "readwrite"
    shards: Union[int, str] = 1
    json: Optional[str] = None
    baseline: Optional[str] = None
    baseline_tolerance: float = 0.1

    def __post_init__(self) -> None:
        _check_values(self, source="settings")

    def replace(self, source: str = "settings", **changes: Any) -> "Settings":
        """A copy with ``changes`` applied (validated; ``source`` names where they came from)."""
        unknown = sorted(set(changes) - set(FIELD_NAMES))
        if unknown:
            raise _unknown_key(unknown[0], source)
        try:
            return dataclasses.replace(self, **changes)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("in settings", f"in {source}")) from None


def describe(settings: Settings) -> str:
    """One line for pytest's header: the active profile, the escalation, the budget and the criterion.

        >>> print(describe(Settings(timeout=5.0, profile="ci")))   # (wrapped here)
        robustest: profile ci, escalate=attack (attacks only: unknown counts as passing),
        timeout=5 s per sample, require=not_falsified, min_pass=1, seed=0
    """
    attack_only = settings.escalate == "attack" and settings.require == "not_falsified"
    caveat = " (attacks only: unknown counts as passing)" if attack_only else ""
    return (f"robustest: profile {settings.profile or '(none)'}, escalate={settings.escalate}{caveat}, "
            f"timeout={settings.timeout:g} s per sample, require={settings.require}, "
            f"min_pass={settings.min_pass:g}, seed={settings.seed}")


FIELD_NAMES: Tuple[str, ...] = tuple(f.name for f in fields(Settings))

#: Profiles every project has; a file's profile of the same name overrides them key by key.
BUILTIN_PROFILES: Dict[str, Dict[str, Any]] = {
    # fast and deterministic, failures only in the JUnit file to stay inside CI artefact limits
    "ci": {"timeout": 5.0, "escalate": "attack", "junit_include": "failures"},
    # time to certify: the full ladder with a generous budget
    "nightly": {"timeout": 60.0, "escalate": "bab", "junit_include": "all"},
}


def _unknown_key(key: str, source: str) -> ConfigError:
    valid = ", ".join(n for n in FIELD_NAMES) + ", profiles"
    return ConfigError(f"unknown option {key!r} in {source}: valid options are {valid}. "
                       f"Fix: remove or rename {key!r}")


def _bad(field_name: str, value: Any, expected: str, fix: str, source: str) -> ConfigError:
    return ConfigError(f"{field_name}={value!r} in {source} is not valid: expected {expected}. Fix: {fix}")


#: settings that are paths or names (None: not set)
_PATHS: Tuple[str, ...] = ("junit", "html", "repair", "profile", "json", "baseline")


def _check_values(s: Settings, *, source: str) -> None:
    """Each field through the option table (:mod:`robustest._options`), as the marker and the API do."""
    for f in fields(s):
        value = getattr(s, f.name)
        if f.name in _PATHS:
            if value is not None and not isinstance(value, str):
                raise _bad(f.name, value, "a string (a path or a name)", f"set {f.name} = \"...\"", source)
            continue
        found = problem(f.name, value)
        if found is not None:
            raise _bad(f.name, value, *found, source)
    object.__setattr__(s, "timeout", float(s.timeout))
    object.__setattr__(s, "min_pass", float(s.min_pass))
    object.__setattr__(s, "baseline_tolerance", float(s.baseline_tolerance))
    object.__setattr__(s, "suppress_health_check", tuple(s.suppress_health_check))


# ---------------------------------------------------------------------------------------- files
def _normalise(table: Mapping[str, Any], source: str) -> Dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"the robustest settings in {source} must be a table/mapping, got "
                          f"{type(table).__name__}. Fix: write key = value pairs under [tool.robustest]")
    out: Dict[str, Any] = {}
    for key, value in table.items():
        name = str(key).replace("-", "_")
        if name != "profiles" and name not in FIELD_NAMES:
            raise _unknown_key(str(key), source)
        out[name] = value
    return out


def _load_toml(path: Path) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(f"reading {path} on Python < 3.11 needs the 'tomli' package. "
                              "Fix: pip install tomli (or move the settings to robustest.yaml)") from None
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix: correct the file") from None
    tool = data.get("tool", {})
    if not isinstance(tool, Mapping):
        raise ConfigError(f"'tool' in {path} must be a table, got {tool!r}. Fix: write [tool.robustest] "
                          "as a table header, not tool = ...")
    section = tool.get("robustest")
    return {} if section is None else _normalise(section, f"{path} [tool.robustest]")


def _load_yaml(path: Path) -> Dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}. Fix: correct the file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not valid: expected UTF-8 text (byte {exc.start} is "
                          f"0x{exc.object[exc.start]:02x}). Fix: save the file as UTF-8") from None
    return {} if data is None else _normalise(data, str(path))


def read_config(directory: Union[str, Path]) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]], str]:
    """The file settings found in ``directory``: (top-level keys, profiles, description of the source).

    ``robustest.yaml`` overrides ``pyproject.toml`` key by key (profiles too).
    """
    directory = Path(directory)
    top: Dict[str, Any] = {}
    profiles: Dict[str, Dict[str, Any]] = {}
    sources = []
    for path, loader in ((directory / PYPROJECT, _load_toml), (directory / YAML_FILE, _load_yaml)):
        if not path.is_file():
            continue
        table = loader(path)
        if not table:
            continue
        sources.append(str(path))
        file_profiles = table.pop("profiles", {}) or {}
        if not isinstance(file_profiles, Mapping):
            raise ConfigError(f"'profiles' in {path} must map profile names to settings, got "
                              f"{file_profiles!r}. Fix: write [tool.robustest.profiles.NAME] tables")
        for name, values in file_profiles.items():
            norm = _normalise(values, f"{path} profile {name!r}")
            if "profiles" in norm or "profile" in norm:
                raise ConfigError(f"profile {name!r} in {path} may not contain 'profile' or 'profiles'. "
                                  "Fix: move them to the top level")
            profiles.setdefault(str(name), {}).update(norm)
        top.update(table)
    return top, profiles, " and ".join(sources) or "defaults"


def load_settings(directory: Union[str, Path, None] = None, *, profile: Optional[str] = None,
                  overrides: Optional[Mapping[str, Any]] = None) -> Settings:
    """Settings from the config files in ``directory`` (default: the current one).

    ``profile`` (e.g. from ``--robust-profile``) beats ``$ROBUSTEST_PROFILE``, which beats a ``profile``
    key in the file; ``overrides``
    (the command line; ``None`` values are ignored) beat everything in the file.

        >>> load_settings("/nonexistent", overrides={"seed": 3}).seed
        3
    """
    top, file_profiles, source = read_config(Path.cwd() if directory is None else directory)
    settings = Settings().replace(source=source, **{k: v for k, v in top.items()})
    env = os.environ.get(PROFILE_ENV) or None
    chosen = profile if profile is not None else env if env is not None else settings.profile
    if chosen is not None:
        known = dict(BUILTIN_PROFILES)
        for name, values in file_profiles.items():
            known[name] = {**known.get(name, {}), **values}
        if chosen not in known:
            origin = "the command line" if profile else f"${PROFILE_ENV}" if env else source
            raise ConfigError(f"unknown profile {chosen!r} (from {origin}):"
                              f" valid profiles are {', '.join(sorted(known))}. "
                              f"Fix: pick one of them or add [tool.robustest.profiles.{chosen}]")
        settings = settings.replace(source=f"profile {chosen!r}", **known[chosen])
        settings = settings.replace(source=f"profile {chosen!r}", profile=chosen)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return settings.replace(source="the command line", **given)

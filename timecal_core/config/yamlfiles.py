"""YAML configuration files shared by BXRun, plotScan and runCalibration.

Safe loading only, plus two things the old scripts did by hand: ``!include other.yml``
(relative to the including file; cycles are an error) and ``{key}`` placeholders in strings,
filled from ``--custom key=value`` (quoted or not: ``threshold: {thr}`` is the placeholder,
not the mapping YAML would read). Every error names the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..contract.errors import UserError
from .parameters import parse_assignments

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Loader(yaml.SafeLoader):
    """SafeLoader carrying the file being read, the include stack and the custom values."""

    path: Path
    stack: tuple[Path, ...]
    custom: Mapping[str, str]


def _where(loader: _Loader, node: yaml.Node) -> str:
    return f"{loader.path}:{node.start_mark.line + 1}"


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)

    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key not in loader.custom:
            given = ", ".join(sorted(loader.custom)) or "none"
            raise UserError(f"{_where(loader, node)}: placeholder {{{key}}} has no value; "
                            f"pass --custom {key}=VALUE (given: {given})")
        return str(loader.custom[key])

    return _PLACEHOLDER.sub(fill, value)


def _construct_include(loader: _Loader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise UserError(f"{_where(loader, node)}: !include takes a file name")
    target = (loader.path.parent / _construct_str(loader, node)).resolve()
    if target in loader.stack:
        chain = " -> ".join(str(p) for p in (*loader.stack, target))
        raise UserError(f"{_where(loader, node)}: !include cycle: {chain}")
    if not target.is_file():
        raise UserError(f"{_where(loader, node)}: !include {target}: no such file")
    data = _load(target, loader.custom, loader.stack)
    if isinstance(data, str) and sum(1 for line in target.read_text(errors="replace").splitlines()
                                     if line.strip() and not line.lstrip().startswith("#")) > 1:
        # lines of text read as one long string (any text parses as YAML): not a config
        raise UserError(f"{_where(loader, node)}: !include {target}: holds text, not YAML data "
                        "(a mapping, a list or a value); include a YAML file")
    return data


def _placeholder_name(node: yaml.MappingNode) -> str | None:
    """``{thr}`` written without quotes is, to YAML, a mapping ``{thr: null}``; the seed's
    users write placeholders so. The name when ``node`` is one."""
    if node.flow_style and len(node.value) == 1:
        key, value = node.value[0]
        if (isinstance(key, yaml.ScalarNode) and key.style is None and _PLACEHOLDER.fullmatch(f"{{{key.value}}}")
                and isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:null"
                and value.value == ""):
            return key.value
    return None


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Any:
    """A mapping, refusing a key given twice (YAML's last-wins would silently drop a line of
    the user's grid); an unquoted ``{key}`` is the placeholder it looks like."""
    name = _placeholder_name(node)
    if name is not None:
        if name not in loader.custom:
            given = ", ".join(sorted(loader.custom)) or "none"
            raise UserError(f"{_where(loader, node)}: placeholder {{{name}}} has no value; "
                            f"pass --custom {name}=VALUE (given: {given})")
        return str(loader.custom[name])
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: SafeLoader says what is wrong
            break
        line = key_node.start_mark.line + 1
        if first is not None:
            raise UserError(f"{loader.path}:{line}: duplicate key {key!r} (first given on line {first}); "
                            f"give each key once (a list holds several values)")
        seen[key] = line
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("!include", _construct_include)


def _load(path: Path, custom: Mapping[str, str], stack: tuple[Path, ...]) -> Any:
    path = path.resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                        f"save the file as UTF-8") from None
    loader = _Loader(text)
    loader.path, loader.stack, loader.custom = path, (*stack, path), custom
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserError(f"{path}{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: YAML error: {exc}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a configuration (lists or mappings "
                        f"inside each other hundreds of levels down); flatten it") from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path, custom: Mapping[str, str] | None = None) -> Any:
    """Load ``path`` safely, resolving ``!include`` and ``{key}`` placeholders."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return _load(path, dict(custom or {}), ())


def parse_custom(items: Sequence[str] | None) -> dict[str, str]:
    """``--custom mode=Sampled thr=5000`` -> ``{"mode": "Sampled", "thr": "5000"}``."""
    return parse_assignments(list(items or ()), source="--custom")

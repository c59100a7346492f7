"""docs/settings.md, rendered from the settings class: each field's variable, type, default and meaning.

python -m embeddings.settings_doc > docs/settings.md   (make docs)
"""

from __future__ import annotations

import inspect
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from embeddings.settings import Settings

HEADER = """# Settings

Generated from `embeddings/settings.py` by `make docs` (`python -m embeddings.settings_doc`): edit the
field descriptions there, not this file; a test fails when this file is stale.

Every setting can come from the environment with the prefix `{prefix}`. The command line's options
(`--bundles`, `--model`, `--host`, `--port`, ...) override the environment. Lists are given
comma-separated. A setting whose default is *unset* has no value unless given; its meaning says what
is used then.

| variable | type | default | meaning |
|---|---|---|---|
"""
TYPE_NAMES = {
    str: "text",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "secret",
}
BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}  # annotated_types' bounds, by attribute


def env_name(settings: type[BaseSettings], name: str) -> str:
    """The environment variable of the field `name`."""
    return f"{settings.model_config.get('env_prefix', '')}{name}".upper()


def type_text(annotation: Any) -> str:
    """A reader's name for a field's type: 'integer', 'one of `a`, `b`', 'list of text'."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(type_text(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin is list:
        (item,) = get_args(annotation)
        return f"list of {type_text(item)}"
    return TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)).lower())


def bounds_text(field: FieldInfo) -> str:
    """The field's numeric bounds, as `>= 1, <= 50` (empty when it has none)."""
    bounds = [item for item in field.metadata if isinstance(item, annotated_types.BaseMetadata)]
    return ", ".join(
        f"{sign} {getattr(item, attr)}"
        for item in bounds
        for attr, sign in BOUNDS.items()
        if hasattr(item, attr)
    )


def default_text(field: FieldInfo) -> str:
    """The field's default as written in the environment: a value, *unset*, *none*, or its factory's doc."""
    if field.default_factory is not None:
        factory = field.default_factory
        if factory is list:
            return "*none*"
        return inspect.getdoc(factory) or "*computed*"
    value = field.default
    if value is None or value is PydanticUndefined:
        return "*unset*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def render(settings: type[BaseSettings] = Settings) -> str:
    """The whole of docs/settings.md, for the settings class `settings`."""
    prefix = settings.model_config.get("env_prefix", "")
    rows = []
    for name, field in settings.model_fields.items():
        kind = type_text(field.annotation)
        if bounds := bounds_text(field):
            kind = f"{kind}, {bounds}"
        if not field.description:
            raise ValueError(f"{settings.__name__}.{name} has no description: give its Field one")
        cells = (f"`{env_name(settings, name)}`", kind, default_text(field), field.description)
        rows.append("| " + " | ".join(cell(c) for c in cells) + " |\n")
    return HEADER.format(prefix=prefix) + "".join(rows)


def main() -> None:
    """Print docs/settings.md."""
    print(render(), end="")


if __name__ == "__main__":
    main()

"""The plugin registry: what plugins add to QuotaFlow without changing its code.

A plugin is a module with ``register(registry: PluginRegistry) -> None``. Plugins are
found through the ``quotaflow.plugins`` entry-point group (installed packages) and as
``*.py`` files in the plugin folders: ``QUOTAFLOW_PLUGIN_PATH`` (os.pathsep-separated)
or, by default, the first-party ``plugins/`` folder beside the package.

Plugins add expression functions (each with a scalar and a vector form) and delivery
channels for the outbox (``registry.add_channel``; the interface is in
``quotaflow.channels``); the SSO kind joins this registry when that feature lands.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from quotaflow.channels import ChannelFactory, ChannelInfo
from quotaflow.rules.functions import FunctionRegistry

ENTRY_POINT_GROUP = "quotaflow.plugins"
FIRST_PARTY_DIR = Path(__file__).resolve().parents[1] / "plugins"


class PluginError(RuntimeError):
    """A plugin could not be loaded; names the plugin and the reason."""


@dataclass
class PluginRegistry:
    functions: FunctionRegistry = field(default_factory=FunctionRegistry)
    loaded: list[str] = field(default_factory=list)
    channels: dict[str, ChannelFactory] = field(default_factory=dict)
    channel_info: dict[str, ChannelInfo] = field(default_factory=dict)

    def add_channel(self, name: str, factory: ChannelFactory, *, per_recipient: bool = False,
                    needs_config: bool = True) -> None:
        """Register a delivery channel (see ``quotaflow.channels`` for the interface)."""
        if name in self.channels:
            raise PluginError(f"channel {name!r} is registered twice")
        self.channels[name] = factory
        self.channel_info[name] = ChannelInfo(name, factory, per_recipient, needs_config)

    def load(self, name: str, module: ModuleType) -> None:
        register = getattr(module, "register", None)
        if not callable(register):
            raise PluginError(f"plugin {name!r} has no register(registry) function")
        try:
            register(self)
        except Exception as exc:
            raise PluginError(f"plugin {name!r} failed to register: {exc}") from exc
        self.loaded.append(name)


def plugin_dirs() -> list[Path]:
    configured = os.environ.get("QUOTAFLOW_PLUGIN_PATH")
    if configured is not None:
        return [Path(p) for p in configured.split(os.pathsep) if p]
    return [FIRST_PARTY_DIR] if FIRST_PARTY_DIR.is_dir() else []


def _module_from_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"quotaflow_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def discover(dirs: list[Path] | None = None) -> PluginRegistry:
    """Build a registry from the entry points and the plugin folders."""
    from quotaflow.services import inbox_channel

    registry = PluginRegistry()
    registry.load("inbox", inbox_channel)  # built in: notifications never depend on a folder
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        registry.load(entry.name, entry.load())
    for directory in plugin_dirs() if dirs is None else dirs:
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                registry.load(path.stem, _module_from_file(path))
    return registry


@cache
def default_registry() -> PluginRegistry:
    """The process-wide registry, discovered once."""
    return discover()


def expression_functions() -> FunctionRegistry:
    """Built-in plus plugin functions, for compiling specs."""
    return default_registry().functions


def channel_registry() -> dict[str, ChannelInfo]:
    """The delivery channels plugins registered, by name."""
    return default_registry().channel_info

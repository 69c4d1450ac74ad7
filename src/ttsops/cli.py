"""The one command-line entry point: ``ttsops``.

Subcommands live in the modules that own their room and are imported only when used,
so ``ttsops logs ...`` never pays for numpy or the engine, and ``ttsops --help`` is fast.
"""

from __future__ import annotations

import importlib.util

import click

from . import __version__

# name -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, str] = {
    "serve": "ttsops.server.cli:serve",
    "synth": "ttsops.pipeline.cli:synth",
    "logs": "ttsops.forensics.cli:logs",
    "simulate": "ttsops.simulate_cli:simulate",
    "engines": "ttsops.engines.cli:engines",
    "settings": "ttsops.cli:settings",
    "errors": "ttsops.cli:errors",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in SUBCOMMANDS if self._available(n))

    @staticmethod
    def _available(name: str) -> bool:
        module = SUBCOMMANDS[name].split(":")[0]
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None or not self._available(cmd_name):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ttsops")
def main() -> None:
    """ttsops: text-to-speech service with observability, and its log forensics."""


@click.command()
@click.option("--markdown", is_flag=True, help="Print the table as Markdown (for the README).")
def settings(markdown: bool) -> None:
    """List every setting: environment variable, default, current value and help."""
    from rich.console import Console
    from rich.table import Table

    from .config import Settings, settings_table

    current = Settings()
    rows = settings_table()
    if markdown:
        click.echo("| variable | default | meaning |\n|---|---|---|")
        for env, default, help_ in rows:
            click.echo(f"| `{env}` | `{default}` | {help_} |")
        return
    table = Table("variable", "default", "current", "meaning")
    for (env, default, help_), name in zip(rows, Settings.model_fields, strict=True):
        value = getattr(current, name)
        shown = "" if value is None else str(value).lower() if isinstance(value, bool) \
            else str(value)
        if name == "api_keys" and value:
            shown = "(set)"
        table.add_row(env, default, shown, help_)
    Console().print(table)


@click.command()
@click.option("--markdown", is_flag=True, help="Print the registry as Markdown.")
def errors(markdown: bool) -> None:
    """List every error code with its level, HTTP status, message and runbook hint."""
    from rich.console import Console
    from rich.table import Table

    from .errors import REGISTRY

    if markdown:
        click.echo("| code | level | HTTP | message | first thing to check |")
        click.echo("|---|---|---|---|---|")
        for s in REGISTRY.values():
            click.echo(f"| `{s.code}` | {s.level} | {s.status} | {s.message} | {s.hint} |")
        return
    table = Table("code", "level", "HTTP", "message", "hint")
    for s in REGISTRY.values():
        table.add_row(s.code, s.level, str(s.status), s.message, s.hint)
    Console().print(table)

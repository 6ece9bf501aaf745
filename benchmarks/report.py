"""Results as JSON (everything) and Markdown (the tables a person reads, with every definition)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import ScenarioResult

__all__ = ["markdown", "write"]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return " / ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|")


def _table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def _machine(run: dict[str, Any]) -> list[str]:
    m = run["machine"]
    packages = ", ".join(f"{name} {version}" for name, version in m["packages"].items() if version)
    return [
        f"Machine: {m['logical_cores']} logical / {m['physical_cores']} physical cores, {m['memory_gb']} GB, "
        f"{m['implementation']} {m['python']} on {m['platform']}; commit {m['commit'] or 'unknown'}.",
        f"Packages: {packages}.",
        f"Load average (1/5/15 min) at start {' '.join(map(str, m['load_average']))}, at end "
        f"{' '.join(map(str, run['load_average_end']))}. The machine may be shared: ratios within one run "
        "mean more than absolute figures.",
        f"Run: `{run['command']}`, {run['seconds']:.0f} s in total.",
    ]


def markdown(run: dict[str, Any], results: Sequence[ScenarioResult]) -> str:
    lines = [f"# llm_pipeline benchmarks, {run['date']}", "", *_machine(run), ""]
    lines += ["## Targets (issues 8, 15 and 17)", ""]
    targets = [(r.key, t) for r in results for t in r.targets]
    rows = [
        {"scenario": key, "target": t.name, "measured": t.value, "threshold": f"{t.op} {_cell(t.threshold)}"}
        | {"met": t.met}
        for key, t in targets
    ]
    lines += _table(["scenario", "target", "measured", "threshold", "met"], rows)
    for result in results:
        lines += ["", f"## {result.key}. {result.title}", ""]
        lines += [f"Configuration: `{json.dumps(result.config, ensure_ascii=False)}`", ""]
        lines += _table(result.columns, result.rows)
        if result.definitions or result.notes:
            lines.append("")
        lines += [f"- {d}" for d in result.definitions]
        lines += [f"- Note: {n}" for n in result.notes]
        lines += ["", f"({result.seconds:.0f} s)"]
    return "\n".join(lines) + "\n"


def write(
    directory: Path, stem: str, run: dict[str, Any], results: Sequence[ScenarioResult]
) -> tuple[Path, Path]:
    """`<stem>.json` and `<stem>.md` in `directory`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {**run, "scenarios": [r.as_dict() for r in results]}
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown(run, results), encoding="utf-8")
    return json_path, md_path

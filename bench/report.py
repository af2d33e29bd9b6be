"""How the benchmarks print a figure."""
from __future__ import annotations


def line(name: str, value, note: str = "") -> None:
    print(f"  {name:<46} {value!s:>12}  {note}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"

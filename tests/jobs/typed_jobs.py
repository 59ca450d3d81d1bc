"""``@job`` functions the jobs-as-code tests register and run on a real worker."""

from __future__ import annotations

from datetime import date

from chronolog import job


@job(retries=0, tags=["typed"])
def days_between(start: date, end: date | None = None, *, label: str = "span") -> dict[str, object]:
    """How many days from start to end; says which types the function got."""
    finish = end or date(2026, 12, 31)
    return {
        "label": label,
        "days": (finish - start).days,
        "start_type": type(start).__name__,
        "end_type": type(end).__name__,
    }


@job(name="typed-greeting", retries=0, parameters={"greeting": "hello"})
async def greet(names: list[str], greeting: str) -> str:
    """An async job: its parameters are converted on the async pool too."""
    return f"{greeting} {', '.join(names)}"

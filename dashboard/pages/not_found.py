"""Any URL that is no page of the dashboard."""

from __future__ import annotations

import dash
from dash import html

from dashboard.widgets import not_found


def layout(**_query: str) -> html.Div:
    return not_found("page at this address", None, "/", "Back to the overview")


dash.register_page("not_found_404", title="Not found · Chronolog", layout=layout)

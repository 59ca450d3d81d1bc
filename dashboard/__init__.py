"""The Plotly Dash dashboard: reads the read model (read-only), acts through the HTTP API."""

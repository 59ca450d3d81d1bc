"""Real services for integration tests: given by environment variables, else started as
local processes on free ports and stopped by PID when the session ends (see TESTING.md)."""

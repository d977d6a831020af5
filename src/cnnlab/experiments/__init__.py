"""One module per exercise: configs, the runs they make, their comparison tables and CLI commands."""

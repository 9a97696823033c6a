"""Python code that example configs name by import path (custom metrics)."""

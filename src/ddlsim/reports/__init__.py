"""Rendering: tables (pandas), plots (matplotlib), files. Formats for display only."""

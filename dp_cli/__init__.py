"""dp - Diverse Person: grow text-based person search datasets (AAAI 2024)."""

__version__ = "0.1.0"

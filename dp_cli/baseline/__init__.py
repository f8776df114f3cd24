"""Retrieval baseline: does the generated data improve text-based person search? (issue 9)"""
